"""Cut a time span out of a recording without decoding the rest of it."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from bdisc.errors import CorruptAudio


def read_segment(
    path: Path | BinaryIO, start_s: float, end_s: float, rate: int | None = None
) -> tuple[np.ndarray, int]:
    """Mono float32 samples of [start_s, end_s) at the native rate, or resampled to ``rate``.
    ``path`` may be an open file (an object in S3 read by ranges: only the span is fetched)."""
    try:
        with sf.SoundFile(str(path) if isinstance(path, Path) else path) as f:
            native = f.samplerate
            first = max(0, round(start_s * native))
            f.seek(min(first, f.frames))
            data = f.read(max(0, round(end_s * native) - first), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudio(f"cannot read {start_s:g}-{end_s:g} s: {exc}", path=str(path)) from exc
    mono = data.mean(axis=1, dtype=np.float32)
    if rate is not None and rate != native:
        return np.asarray(soxr.resample(mono, native, rate), dtype=np.float32), rate
    return mono, native
