"""A log-magnitude spectrogram of a short segment, for montage tiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpectrogramStyle:
    fmin: float = 0.0
    fmax: float = 12_000.0
    cmap: str = "magma"
    dynamic_range_db: float = 70.0


def spectrogram_db(
    samples: np.ndarray, rate: int, style: SpectrogramStyle
) -> tuple[np.ndarray, float, float]:
    """(dB image with low frequencies first, top frequency, duration) for the band."""
    n = 1 << max(7, int(np.ceil(np.log2(0.02 * rate))))  # ~20 ms frames
    hop = n // 4
    if samples.size < n:
        samples = np.pad(samples, (0, n - samples.size))
    frames = np.lib.stride_tricks.sliding_window_view(samples, n)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    top = min(style.fmax, rate / 2)
    band = (freqs >= style.fmin) & (freqs <= top)
    db = 10.0 * np.log10(power[:, band].T + 1e-12)
    db = np.clip(db, db.max() - style.dynamic_range_db, None)
    return db, float(top), samples.size / rate
