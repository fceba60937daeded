"""Cut a stream of samples into BirdNET windows, with BirdNET-Analyzer's rules.

Windows of ``window_s`` start every ``window_s - overlap_s`` seconds, as long as at least
``min_len_s`` of audio remains from their start; windows that run past the end are
zero-padded to full length. Full windows are emitted as soon as their samples have
arrived. With overlap, several padded windows may end a recording (120 s at 1.5-s
overlap: ..., 117-120 and 118.5-120), exactly as BirdNET-Analyzer 2.4 cuts it. A
recording shorter than ``min_len_s`` yields no window at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from bdisc.errors import ConfigError

# The shortest step between windows (BirdNET-Analyzer's overlap tops out at 2.9 s): each
# recording costs at most 30 windows per 3 s.
MIN_STEP_S = 0.1


@dataclass(frozen=True)
class WindowSpec:
    sample_rate: int = 48_000
    window_s: float = 3.0
    overlap_s: float = 0.0
    min_len_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap_s < self.window_s:
            raise ConfigError(f"overlap must be >= 0 and < {self.window_s} s, got {self.overlap_s}")
        if not 0.0 < self.min_len_s <= self.window_s:
            raise ConfigError(
                f"minimum length must be > 0 and <= {self.window_s} s, got {self.min_len_s}"
            )
        if self.window_s - self.overlap_s < MIN_STEP_S - 1e-9:
            raise ConfigError(
                f"overlap {self.overlap_s} s leaves less than {MIN_STEP_S} s between windows "
                f"(at most {self.window_s - MIN_STEP_S:g} s, as BirdNET-Analyzer)"
            )

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.window_s)

    @property
    def step_samples(self) -> int:
        return round(self.sample_rate * (self.window_s - self.overlap_s))

    @property
    def min_samples(self) -> int:
        return round(self.sample_rate * self.min_len_s)


@dataclass(frozen=True)
class Window:
    index: int
    start_s: float
    end_s: float
    samples: np.ndarray  # float32, exactly spec.window_samples long
    valid: int  # samples of real audio; the rest is zero padding


def frame_windows(
    blocks: Iterable[np.ndarray],
    spec: WindowSpec,
    *,
    first_index: int = 0,
    count: int | None = None,
) -> Iterator[Window]:
    """Windows of a recording whose samples ``blocks`` hold from the start of window
    ``first_index`` on (a part of a long recording): up to ``count`` windows, or to the
    end of the recording with its padded tail windows when ``count`` is None."""
    size, step, rate = spec.window_samples, spec.step_samples, spec.sample_rate
    buf = np.zeros(0, dtype=np.float32)
    buf_start = first_index * step  # absolute sample index of buf[0]
    next_start = buf_start
    index = first_index
    stop = None if count is None else first_index + count
    for block in blocks:
        buf = np.concatenate((buf, block)) if buf.size else block
        while next_start + size <= buf_start + buf.size:
            if index == stop:
                return
            offset = next_start - buf_start
            window = buf[offset : offset + size]
            yield Window(index, next_start / rate, (next_start + size) / rate, window, size)
            index += 1
            next_start += step
        keep_from = next_start - buf_start
        if keep_from > 0:
            buf = buf[keep_from:]
            buf_start = next_start
    if stop is not None:
        return  # a part ends with its last full window; the recording's end is elsewhere
    total = buf_start + buf.size
    while total - next_start >= max(1, spec.min_samples):
        remaining = total - next_start
        padded = np.zeros(size, dtype=np.float32)
        padded[:remaining] = buf[next_start - buf_start :]
        yield Window(index, next_start / rate, total / rate, padded, remaining)
        index += 1
        next_start += step
