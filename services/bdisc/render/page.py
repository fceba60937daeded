"""Static review pages: open index.html from disk, no server needed."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bdisc.fsutil import atomic_write_text

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{margin-bottom:.2em} .meta{color:#555;margin-bottom:1.5em}
section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1em;margin:1em 0}
section img{max-width:100%;border:1px solid #eee}
.clips{display:flex;flex-wrap:wrap;gap:.6em;margin-top:.6em}
.clip{font-size:.8em;background:#f3f3f3;padding:.3em .5em;border-radius:6px}
.clip audio{display:block;width:210px;height:30px}
nav a{margin-right:1em}
table{border-collapse:collapse}
td,th{border-bottom:1px solid #eee;padding:.2em .6em;text-align:left}
"""


@dataclass(frozen=True)
class ClipLink:
    src: str  # relative to the page
    caption: str


@dataclass(frozen=True)
class ClusterSection:
    cluster: int
    size: int
    top_labels: str
    montage: str  # relative path of the PNG
    clips: Sequence[ClipLink]
    background: bool = False  # the background group (what the recorder hears between calls)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write_group_page(
    path: Path, title: str, meta: str, map_png: str, sections: Sequence[ClusterSection]
) -> None:
    nav = " ".join(f'<a href="#c{s.cluster}">{s.cluster}</a>' for s in sections)
    parts = [
        f"<h1>{html.escape(title)}</h1><div class=meta>{html.escape(meta)}</div>",
        f"<nav>Clusters: {nav}</nav>",
        f'<section><h2>Map</h2><img src="{html.escape(map_png)}" alt="UMAP map"></section>',
    ]
    for s in sections:
        name = "noise (-1)" if s.cluster < 0 else f"Cluster {s.cluster}"
        if s.background:
            name = f"Background ({s.cluster})"
        clips = "".join(
            f"<div class=clip>{html.escape(c.caption)}"
            f'<audio controls preload=none src="{html.escape(c.src)}"></audio></div>'
            for c in s.clips
        )
        parts.append(
            f'<section id="c{s.cluster}"><h2>{name}: {s.size} windows</h2>'
            f"<div>Top BirdNET labels: {html.escape(s.top_labels) or '-'}</div>"
            f'<img src="{html.escape(s.montage)}" alt="{name} montage" loading=lazy>'
            f"<div class=clips>{clips}</div></section>"
        )
    atomic_write_text(path, _page(title, "".join(parts)))


def write_index(
    path: Path,
    title: str,
    groups: Sequence[tuple[str, str, int]],
    sound_types: Sequence[tuple[int, str, int, int]] = (),
) -> None:
    """Top-level page: one link per group (name, relative href, cluster count), then the
    sound types (type id, folder, cluster, size per member cluster), each listing its
    clusters across deployments, so one look names a sound everywhere it was heard."""
    items = "".join(
        f'<li><a href="{html.escape(href)}">{html.escape(name)}</a>: {n} clusters</li>'
        for name, href, n in groups
    )
    body = f"<h1>{html.escape(title)}</h1><ul>{items}</ul>"
    by_type: dict[int, list[tuple[str, int, int]]] = {}
    for type_id, folder, cluster, size in sound_types:
        by_type.setdefault(type_id, []).append((folder, cluster, size))
    if by_type:
        rows = "".join(
            f"<tr><td>{t}</td><td>{sum(m[2] for m in members)}</td><td>"
            + ", ".join(
                f'<a href="{html.escape(folder)}/index.html#c{cluster}">'
                f"{html.escape(folder)} #{cluster}</a> ({size})"
                for folder, cluster, size in members
            )
            + "</td></tr>"
            for t, members in sorted(by_type.items())
        )
        body += (
            "<section><h2>Sound types</h2><p>Clusters of every deployment linked by "
            "their sound: a label given to one is suggested for the others "
            "(SuggestedLabel in review.csv).</p><table><tr><th>Type</th><th>Windows</th>"
            f"<th>Clusters (windows)</th></tr>{rows}</table></section>"
        )
    atomic_write_text(path, _page(title, body))
