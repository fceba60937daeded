"""One spectrogram tile as PNG bytes (the on-demand counterpart of the montage tiles)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bdisc.render.spectrogram import SpectrogramStyle, spectrogram_db

DPI = 100


def tile_png(
    samples: np.ndarray, rate: int, style: SpectrogramStyle, width: int, height: int
) -> bytes:
    db, top, seconds = spectrogram_db(samples, rate, style)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap=style.cmap,
        extent=(0.0, seconds, style.fmin / 1000, top / 1000),
    )
    ax.set_axis_off()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
