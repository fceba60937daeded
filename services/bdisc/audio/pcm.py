"""Raw PCM from a live stream (gRPC, a recorder) -> mono float32 blocks at the model's rate."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from bdisc.errors import ConfigError

ENCODINGS = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0)}
MAX_RATE = 768_000
MAX_CHANNELS = 64


@dataclass(frozen=True)
class PcmFormat:
    sample_rate: int
    channels: int = 1
    encoding: str = "s16le"

    def __post_init__(self) -> None:
        if not 1_000 <= self.sample_rate <= MAX_RATE:
            raise ConfigError(
                f"sample rate must be 1 kHz to {MAX_RATE // 1000} kHz, got {self.sample_rate}"
            )
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise ConfigError(f"channels must be 1 to {MAX_CHANNELS}, got {self.channels}")
        if self.encoding not in ENCODINGS:
            raise ConfigError(
                f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}"
            )


def pcm_blocks(chunks: Iterable[bytes], fmt: PcmFormat, target_rate: int) -> Iterator[np.ndarray]:
    """Decode, mix down and resample chunk by chunk (chunks may split samples anywhere)."""
    dtype, scale = ENCODINGS[fmt.encoding]
    frame_bytes = np.dtype(dtype).itemsize * fmt.channels
    resampler = (
        None
        if fmt.sample_rate == target_rate
        else soxr.ResampleStream(fmt.sample_rate, target_rate, 1, dtype="float32")
    )
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        usable = len(data) - len(data) % frame_bytes
        pending = data[usable:]
        if not usable:
            continue
        frames = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, fmt.channels)
        mono = (frames.mean(axis=1) / scale).astype(np.float32)
        block = resampler.resample_chunk(mono) if resampler else mono
        if block.size:
            yield block
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            yield tail
