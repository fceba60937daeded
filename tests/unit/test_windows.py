"""Window planning follows BirdNET-Analyzer's rules, whatever the block sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bdisc.audio.windows import WindowSpec, frame_windows
from bdisc.errors import ConfigError

RATE = 100  # small rate: same arithmetic, tiny arrays


def split_signal_starts(total: int, spec: WindowSpec) -> list[int]:
    """BirdNET-Analyzer's split_signal arithmetic (one block), written out independently."""
    size, step, minlen = spec.window_samples, spec.step_samples, spec.min_samples
    last = max(0, math.ceil((total - size) / step) * step)
    if total - last < minlen:
        last -= step
    return list(range(0, last + 1, step))


def analyzer_starts(total: int, spec: WindowSpec, block: int = 600 * RATE) -> list[int]:
    """BirdNET-Analyzer 2.4's iterate_audio_chunks: split a block of the file, go on from
    the step after its last window while audio remains."""
    starts: list[int] = []
    start = 0
    while start < total:
        chunks = split_signal_starts(min(block, total - start), spec)
        if not chunks:
            break
        starts += [start + c for c in chunks]
        start += len(chunks) * spec.step_samples
    return starts


def cut(signal: np.ndarray, spec: WindowSpec, block: int) -> list[tuple[float, float, np.ndarray]]:
    blocks = [signal[i : i + block] for i in range(0, signal.size, block)]
    return [(w.start_s, w.end_s, w.samples) for w in frame_windows(blocks, spec)]


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.0, 2.0, 2.9])
@pytest.mark.parametrize("seconds", [0.3, 0.99, 1.0, 2.5, 3.0, 3.5, 4.0, 9.5, 10.0, 120.0])
@pytest.mark.parametrize("block", [7, 100, 1000])
def test_starts_match_analyzer(overlap: float, seconds: float, block: int) -> None:
    spec = WindowSpec(RATE, 3.0, overlap, 1.0)
    total = round(seconds * RATE)
    signal = np.arange(total, dtype=np.float32) + 1
    windows = cut(signal, spec, block)
    assert [round(s * RATE) for s, _, _ in windows] == analyzer_starts(total, spec)
    for start, end, samples in windows:
        a = round(start * RATE)
        assert samples.shape == (spec.window_samples,)
        assert end == min(start + 3.0, seconds)
        valid = min(spec.window_samples, total - a)
        np.testing.assert_array_equal(samples[:valid], signal[a : a + valid])
        assert not samples[valid:].any()  # zero padding


def test_reference_window_ends_for_overlaps() -> None:
    """BirdNET-Analyzer 2.4's last windows of 120 s: every step while 1 s of audio remains
    (its reference output at 1.5-s overlap ends with 117-120 and 118.5-120)."""
    signal = np.ones(120 * RATE, dtype=np.float32)
    ends = [(s, e) for s, e, _ in cut(signal, WindowSpec(RATE, 3.0, 1.5, 1.0), 500)[-2:]]
    assert ends == [(117.0, 120.0), (118.5, 120.0)]
    ends = [(s, e) for s, e, _ in cut(signal, WindowSpec(RATE, 3.0, 2.0, 1.0), 500)[-3:]]
    assert ends == [(117.0, 120.0), (118.0, 120.0), (119.0, 120.0)]
    last = cut(signal, WindowSpec(RATE, 3.0, 0.5, 1.0), 500)[-1]
    assert (last[0], last[1]) == (117.5, 120.0)


def test_short_clip_needs_lower_min_len() -> None:
    clip = np.ones(round(0.3 * RATE), dtype=np.float32)
    assert cut(clip, WindowSpec(RATE, 3.0, 0.0, 1.0), 10) == []
    windows = cut(clip, WindowSpec(RATE, 3.0, 0.0, 0.1), 10)
    assert len(windows) == 1 and windows[0][1] == 0.3


def test_empty_stream_has_no_windows() -> None:
    assert list(frame_windows([], WindowSpec(RATE))) == []


@pytest.mark.parametrize(("overlap", "min_len"), [(-0.1, 1.0), (3.0, 1.0), (0.0, 0.0), (0.0, 3.5)])
def test_invalid_specs_are_refused(overlap: float, min_len: float) -> None:
    with pytest.raises(ConfigError):
        WindowSpec(RATE, 3.0, overlap, min_len)
