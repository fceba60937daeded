"""One spectrogram tile as PNG bytes (the on-demand counterpart of the montage tiles)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from bdisc.errors import ConfigError
from bdisc.render.spectrogram import SpectrogramStyle, spectrogram_db

if TYPE_CHECKING:  # matplotlib is imported when something is drawn, not at start-up
    from matplotlib.axes import Axes

DPI = 100


def check_colour_map(name: str) -> None:
    """ConfigError for a colour map matplotlib does not know (before anything is drawn)."""
    from matplotlib import colormaps

    if name not in colormaps:
        raise ConfigError(f"unknown colour map {name!r} (e.g. magma, viridis, gray)")


def draw(ax: Axes, samples: np.ndarray, rate: int, style: SpectrogramStyle) -> None:
    """The spectrogram of ``samples`` into ``ax``: time in s, frequency in kHz."""
    db, top, seconds = spectrogram_db(samples, rate, style)
    ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap=style.cmap,
        extent=(0.0, seconds, style.fmin / 1000, top / 1000),
    )


def tile_png(
    samples: np.ndarray, rate: int, style: SpectrogramStyle, width: int, height: int
) -> bytes:
    check_colour_map(style.cmap)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    draw(ax, samples, rate, style)
    ax.set_axis_off()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
