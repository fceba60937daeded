"""Decode any supported recording into a stream of mono float32 blocks at the model's rate.

Long recordings are never loaded whole: the file is read in blocks, mixed down to mono
(channel mean, as librosa and BirdNET-Analyzer do) and resampled with a streaming soxr
resampler, so memory stays bounded by the block size whatever the duration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from bdisc.audio.formats import AUDIO_EXTENSIONS, is_audio_path
from bdisc.errors import CorruptAudio, EmptyAudio, NotFound, UnsupportedFormat

# Upper bound on samples (all channels) decoded at once: 4 Mi float32 = 16 MiB.
MAX_BLOCK_SAMPLES = 4 * 1024 * 1024
BLOCK_SECONDS = 10.0
RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True)
class AudioInfo:
    """What the decoder says about a recording before we read it."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe(path: Path) -> AudioInfo:
    """Open the file's header; raise an AudioError subclass if it is no usable audio."""
    if not path.exists():
        raise NotFound(f"no such file: {path}", path=str(path))
    if not is_audio_path(path):
        raise UnsupportedFormat(
            f"not a supported audio file (extension {path.suffix or 'none'!r}; "
            f"supported: {', '.join(sorted(AUDIO_EXTENSIONS))})",
            path=str(path),
        )
    if path.stat().st_size == 0:
        raise EmptyAudio("file is empty (0 bytes)", path=str(path))
    return _read_header(str(path), str(path))


def probe_file(source: BinaryIO, name: str, size: int) -> AudioInfo:
    """``probe`` for an open file (an object in S3 read by ranges); ``name`` gives the
    extension and the path reported in errors."""
    if not is_audio_path(PurePosixPath(name)):
        raise UnsupportedFormat(
            f"not a supported audio file (extension {PurePosixPath(name).suffix or 'none'!r})",
            path=name,
        )
    if size == 0:
        raise EmptyAudio("file is empty (0 bytes)", path=name)
    return _read_header(source, name)


def _read_header(source: str | BinaryIO, name: str) -> AudioInfo:
    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise CorruptAudio(f"cannot decode audio header: {exc}", path=name) from exc
    if info.samplerate <= 0 or info.channels <= 0:
        raise CorruptAudio(
            f"invalid header: {info.samplerate} Hz, {info.channels} channels", path=name
        )
    if info.frames <= 0:
        raise EmptyAudio("recording has no audio frames", path=name)
    return AudioInfo(
        warnings=_header_warnings(str(info.extra_info)),
        path=name,
        format=str(info.format),
        subtype=str(info.subtype),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
    )


# libsndfile notes a data chunk that is larger than the file as "data : 1152000 (should be 575978)".
_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _header_warnings(extra_info: str) -> tuple[str, ...]:
    match = _SIZE_MISMATCH.search(extra_info)
    if match and int(match.group(2)) < int(match.group(1)):
        declared, present = int(match.group(1)), int(match.group(2))
        return (
            f"truncated: header declares {declared} bytes of audio, the file holds "
            f"{present} ({100 * present / declared:.0f}%); analysed what is there",
        )
    return ()


@dataclass
class DecodeStats:
    """Filled while streaming: how much audio the decoder really delivered."""

    frames_read: int = 0


def stream_mono(
    info: AudioInfo,
    target_rate: int,
    *,
    stats: DecodeStats | None = None,
    block_seconds: float = BLOCK_SECONDS,
    speed: float = 1.0,
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks of the recording resampled to ``target_rate``.

    ``speed`` plays the recording faster (> 1) or slower (< 1): its samples are taken
    as recorded at ``sample_rate * speed``, so a 256-kHz recording at speed 0.1 becomes
    a 25.6-kHz one, ten times longer, before resampling (BirdNET-Analyzer's audio speed).
    """
    block = max(1, min(int(block_seconds * info.sample_rate), MAX_BLOCK_SAMPLES // info.channels))
    source_rate = info.sample_rate * speed
    resampler = (
        None
        if source_rate == target_rate
        else soxr.ResampleStream(
            source_rate, target_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )
    )
    try:
        with sf.SoundFile(info.path) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                n = data.shape[0]
                last = n < block
                if stats is not None:
                    stats.frames_read += n
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                mono = np.ascontiguousarray(mono, dtype=np.float32)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if mono.size:
                    yield mono
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        done = stats.frames_read / info.sample_rate if stats else 0.0
        raise CorruptAudio(f"decoding failed after {done:.1f} s: {exc}", path=info.path) from exc
