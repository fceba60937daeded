"""One PNG per cluster: spectrogram tiles of representative members, captioned."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bdisc.discovery.sheets import WindowRow
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.render.tile import check_colour_map, draw

COLUMNS = 6

# (window) -> (mono samples, sample rate); supplied by the caller (reads the recording).
SegmentReader = Callable[[WindowRow], tuple[np.ndarray, int]]


def pick_members(rows: Sequence[WindowRow], cap: int) -> list[WindowRow]:
    """Half the tiles: the most typical members (highest membership, taking recordings in
    turn within each 0.05 band of membership); the other half spread evenly over the rest
    in recording order, to show the cluster's range."""
    ranked = sorted(rows, key=lambda r: (-r.probability, r.file, r.start_s))
    turn: dict[str, int] = {}
    order = []
    for r in ranked:
        turn[r.file] = turn.get(r.file, -1) + 1
        order.append((-round(r.probability * 20), turn[r.file], r.file, r.start_s, r))
    by_prob = [item[-1] for item in sorted(order, key=lambda t: t[:4])]
    if len(by_prob) <= cap:
        return by_prob
    head = by_prob[: cap // 2]
    rest = sorted(by_prob[cap // 2 :], key=lambda r: (r.file, r.start_s))
    picks = np.linspace(0, len(rest) - 1, cap - len(head)).round().astype(int)
    return head + [rest[i] for i in picks]


def render_montage(
    path: Path,
    title: str,
    members: Sequence[WindowRow],
    read: SegmentReader,
    style: SpectrogramStyle,
) -> None:
    check_colour_map(style.cmap)  # a wrong name is the caller's error, not N broken tiles
    rows = max(1, math.ceil(len(members) / COLUMNS))
    cols = min(COLUMNS, max(1, len(members)))
    fig = Figure(figsize=(2.6 * cols, 2.0 * rows + 0.6), dpi=80)
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    for i, member in enumerate(members):
        ax = fig.add_subplot(rows, cols, i + 1)
        try:
            samples, rate = read(member)
            draw(ax, samples, rate, style)
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
        name = Path(member.file).stem
        ax.set_title(f"{name[:22]} @{member.start_s:g}s", fontsize=7)
        ax.tick_params(labelsize=6)
        if i % cols:
            ax.set_yticklabels([])
        else:
            ax.set_ylabel("kHz", fontsize=6)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def render_map(path: Path, title: str, xy: np.ndarray, clusters: np.ndarray) -> None:
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
    ax.set_title(title)
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
