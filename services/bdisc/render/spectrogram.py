"""A log-magnitude spectrogram of a segment, for montage tiles and on-demand tiles.

Its cost is bounded by its output, not its input: at most ``MAX_FRAMES`` columns (a
tile is at most 4096 pixels wide; a longer or faster segment takes a larger hop), and
the FFT runs ``CHUNK_FRAMES`` frames at a time, keeping only the band's rows. A 60-s
tile of a 384-kHz recording needs about as much memory as its samples, not 15 times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_FRAMES = 4096  # columns of the image at most (the widest tile is 4096 pixels)
CHUNK_FRAMES = 256  # frames transformed at a time


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
    if samples.size < n:
        samples = np.pad(samples, (0, n - samples.size))
    hop = max(n // 4, -(-(samples.size - n + 1) // MAX_FRAMES))  # at most MAX_FRAMES frames
    frames = np.lib.stride_tricks.sliding_window_view(samples, n)[::hop]  # a view: no copy
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    top = min(style.fmax, rate / 2)
    band = (freqs >= style.fmin) & (freqs <= top)
    window = np.hanning(n)
    power = np.empty((len(frames), int(band.sum())))
    for start in range(0, len(frames), CHUNK_FRAMES):
        chunk = frames[start : start + CHUNK_FRAMES] * window
        power[start : start + CHUNK_FRAMES] = np.abs(np.fft.rfft(chunk, axis=1)[:, band]) ** 2
    db = 10.0 * np.log10(power.T + 1e-12)
    db = np.clip(db, db.max() - style.dynamic_range_db, None)
    return db, float(top), samples.size / rate
