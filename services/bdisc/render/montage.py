"""One PNG per cluster: spectrogram tiles of representative members, captioned."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from bdisc.errors import InternalError
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.render.tile import check_colour_map, draw

COLUMNS = 6

# (source, start_s, end_s) -> (mono samples, sample rate); the caller reads the recording
# (a local file, ranged reads of an object), ``source`` names it as the caller knows it.
SpanReader = Callable[[str, float, float], tuple[np.ndarray, int]]


def plain(text: str) -> str:
    """Text drawn as written: a file named ``a$b$.wav`` is not math to typeset."""
    return text.replace("$", r"\$")


@dataclass(frozen=True)
class Span:
    source: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Png:
    data: bytes
    width: int
    height: int


def montage_png(
    title: str, spans: Sequence[Span], read: SpanReader, style: SpectrogramStyle
) -> Png:
    """A grid of spectrogram tiles, one per span, each captioned with its recording and
    start time; an unreadable span is drawn as a captioned blank, not an error."""
    check_colour_map(style.cmap)  # a wrong name is the caller's error, not N broken tiles
    rows = max(1, math.ceil(len(spans) / COLUMNS))
    cols = min(COLUMNS, max(1, len(spans)))
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # when drawing, not at start-up
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.6 * cols, 2.0 * rows + 0.6), dpi=80)
    FigureCanvasAgg(fig)
    fig.suptitle(plain(title), fontsize=13, fontweight="bold")
    for i, span in enumerate(spans):
        ax = fig.add_subplot(rows, cols, i + 1)
        try:
            samples, rate = read(span.source, span.start_s, span.end_s)
            draw(ax, samples, rate, style)
        except InternalError:  # the platform is misconfigured (its store refused): say so
            raise
        except Exception as exc:  # one unreadable tile must not sink the montage
            ax.text(
                0.5,
                0.5,
                f"unreadable:\n{type(exc).__name__}",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=7,
            )
        name = PurePosixPath(span.source).stem
        ax.set_title(plain(f"{name[:22]} @{span.start_s:g}s"), fontsize=7)
        ax.tick_params(labelsize=6)
        if i % cols:
            ax.set_yticklabels([])
        else:
            ax.set_ylabel("kHz", fontsize=6)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = io.BytesIO()
    fig.savefig(out, format="png")
    width, height = (round(float(v)) for v in fig.get_size_inches() * fig.dpi)
    return Png(out.getvalue(), width, height)


def render_map(path: Path, title: str, xy: np.ndarray, clusters: np.ndarray) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 7), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    noise = clusters < 0
    ax.scatter(xy[noise, 0], xy[noise, 1], s=6, c="#bbbbbb", label="noise (-1)")
    ids = sorted(set(clusters[~noise].tolist()))
    for i, k in enumerate(ids):
        member = clusters == k
        color = _color(i)
        ax.scatter(xy[member, 0], xy[member, 1], s=9, color=color)
        cx, cy = np.median(xy[member], axis=0)
        ax.text(
            cx,
            cy,
            str(k),
            fontsize=10,
            fontweight="bold",
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "alpha": 0.85},
        )
    ax.set_title(plain(title))
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _color(i: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    # tab10's ten distinct hues first, then Dark2 and Set1 for more clusters.
    names, sizes = ("tab10", "Dark2", "Set1"), (10, 8, 9)
    for name, size in zip(names, sizes, strict=True):
        if i < size:
            return tuple(colormaps[name](i))  # type: ignore[return-value]
        i -= size
    return tuple(colormaps["hsv"]((i * 0.618) % 1.0))  # type: ignore[return-value]
