from __future__ import annotations

import numpy as np
import pytest

from bdisc.audio.bandpass import Bandpass, WindowFilter
from bdisc.errors import ConfigError

RATE = 48_000


def tone(hz: float) -> np.ndarray:
    t = np.arange(RATE * 3) / RATE
    return np.sin(2 * np.pi * hz * t).astype(np.float32)


def gain(band: Bandpass, hz: float) -> float:
    out = WindowFilter(band, RATE).apply(tone(hz))
    return float(np.std(out[RATE:]) / np.std(tone(hz)[RATE:]))


def test_default_band_is_a_no_op() -> None:
    x = tone(1000)
    assert WindowFilter(Bandpass(), RATE).apply(x) is x
    assert not Bandpass().active


def test_high_low_and_band_pass() -> None:
    assert gain(Bandpass(5000, 15000), 1000) < 0.01
    assert gain(Bandpass(5000, 15000), 10000) > 0.9
    assert gain(Bandpass(0, 10000), 14000) < 0.2
    assert gain(Bandpass(0, 10000), 2000) > 0.9
    assert gain(Bandpass(5000, 10000), 7000) > 0.9
    assert gain(Bandpass(5000, 10000), 2000) < 0.01


@pytest.mark.parametrize(("fmin", "fmax"), [(-1, 1000), (5000, 5000), (6000, 5000)])
def test_invalid_bands(fmin: float, fmax: float) -> None:
    with pytest.raises(ConfigError):
        Bandpass(fmin, fmax)
