"""Optional band-pass filter applied to each window before inference (BirdNET semantics).

BirdNET's spectrogram covers 0 to 15 kHz. A user band inside it turns into a 5th-order
Butterworth high-pass (fmin > 0), low-pass (fmax < 15 kHz) or band-pass (both), run
causally over each padded 3-s window, exactly as the `birdnet` package does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bdisc.errors import ConfigError

MODEL_FMIN = 0.0
MODEL_FMAX = 15_000.0
ORDER = 5


@dataclass(frozen=True)
class Bandpass:
    fmin: float = MODEL_FMIN
    fmax: float = MODEL_FMAX

    def __post_init__(self) -> None:
        if self.fmin < 0 or self.fmax <= self.fmin:
            raise ConfigError(
                f"bandpass needs 0 <= fmin < fmax, got fmin={self.fmin}, fmax={self.fmax}"
            )

    @property
    def active(self) -> bool:
        return self.fmin > MODEL_FMIN or self.fmax < MODEL_FMAX


class WindowFilter:
    """The designed filter for one sample rate; ``apply`` works on one window."""

    def __init__(self, band: Bandpass, sample_rate: int) -> None:
        nyquist = sample_rate // 2
        if band.fmax < MODEL_FMAX and band.fmax >= nyquist:
            raise ConfigError(f"bandpass fmax {band.fmax} Hz is not below Nyquist {nyquist} Hz")
        self.coefficients: tuple[np.ndarray, np.ndarray] | None = None
        if not band.active:
            return
        from scipy.signal import butter  # lazy: importing scipy.signal takes about 1 s

        if band.fmin > MODEL_FMIN and band.fmax < MODEL_FMAX:
            b, a = butter(ORDER, [band.fmin / nyquist, band.fmax / nyquist], btype="band")
        elif band.fmin > MODEL_FMIN:
            b, a = butter(ORDER, band.fmin / nyquist, btype="high")
        else:
            b, a = butter(ORDER, band.fmax / nyquist, btype="low")
        self.coefficients = (np.asarray(b), np.asarray(a))

    def apply(self, window: np.ndarray) -> np.ndarray:
        if self.coefficients is None:
            return window
        from scipy.signal import lfilter

        b, a = self.coefficients
        return np.asarray(lfilter(b, a, window), dtype=np.float32)
