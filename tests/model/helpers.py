"""Building test folders from real recordings, a model wrapper that counts work, and the
model's windows of one recording."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from bdisc.audio.reader import probe
from bdisc.model.labels import Label
from bdisc.model.port import AcousticModel, Inference, ModelInfo
from bdisc.params import AnalysisParams
from bdisc.pipeline.inference import StreamStats, infer_recording


class CountingModel:
    """The real model, counting the windows it is asked to run (to prove resume works)."""

    def __init__(self, inner: AcousticModel) -> None:
        self.inner = inner
        self.windows = 0

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    @property
    def labels(self) -> Sequence[Label]:
        return self.inner.labels

    def infer(self, batch: np.ndarray) -> Inference:
        self.windows += batch.shape[0]
        return self.inner.infer(batch)


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def write_clip(
    src: Path, dst: Path, seconds: float, channels: int = 1, subtype: str = "PCM_16"
) -> Path:
    """The first ``seconds`` of a real recording, optionally spread over channels."""
    data, rate = sf.read(src, frames=int(seconds * sf.info(src).samplerate), dtype="float32")
    if channels > 1:
        data = data[:, None] * np.linspace(1.0, 0.3, channels, dtype=np.float32)[None, :]
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, data, rate, subtype=subtype)
    return dst


def truncate(src: Path, dst: Path, keep_fraction: float) -> Path:
    """A WAV cut short on disk: its header still claims the full length."""
    raw = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(raw[: int(len(raw) * keep_fraction)])
    return dst


def garble(src: Path, dst: Path, keep_bytes: int = 8192) -> Path:
    raw = bytearray(src.read_bytes())
    rng = np.random.default_rng(1)
    raw[keep_bytes:] = rng.integers(0, 256, len(raw) - keep_bytes, dtype=np.uint8).tobytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(raw))
    return dst


def run_windows(
    model: AcousticModel, path: Path, params: AnalysisParams, batch_size: int = 8
) -> Iterator[tuple[float, float, np.ndarray, np.ndarray]]:
    """(start_s, end_s, logits, embedding) per window of one recording."""
    stats = StreamStats()
    for batch in infer_recording(probe(path), model, params, batch_size, stats):
        for i in range(len(batch)):
            yield (
                float(batch.start_s[i]),
                float(batch.end_s[i]),
                batch.logits[i],
                batch.embeddings[i],
            )
