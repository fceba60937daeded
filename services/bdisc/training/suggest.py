"""``suggest``: the windows a trained head is least sure of, for a person to label next
(active learning), laid out as a discovery group.

results folder -> the unlabelled windows of its groups (``pool``) -> the head's scores
-> margins and score bands (``margin``) -> up to n windows, spread over deployments and
bands -> OUT as a group: one cluster per window, so the reviewer labels each row of
OUT/review.csv as a cluster; clusters.csv, montages/cluster_<k>.png, montage.png (all
windows), index.html; suggested_windows.csv, the same windows as the per-window labels
sheet ``bdisc export --overrides`` and ``bdisc train --overrides`` read (folder, file,
start_s, label: fill in the label); suggest.json (what chose them).

With OUT inside the results folder (the default), its review.csv is one of the results'
sheets: ``bdisc train RESULTS`` learns its labels, and ``bdisc export --review
OUT/review.csv --results RESULTS`` cuts them. Label one of the two sheets: a blank label
in an overrides sheet drops its window.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bdisc.audio.segments import read_segment
from bdisc.discovery.export import recording_index
from bdisc.discovery.sheets import (
    CLUSTERS_FILE,
    REVIEW_FILE,
    WindowRow,
    read_clusters,
    read_review,
    write_clusters,
    write_review,
)
from bdisc.errors import BdiscError, ConfigError
from bdisc.fsutil import atomic_write_text
from bdisc.logs import fields
from bdisc.render.montage import Span, SpanReader, montage_png
from bdisc.render.page import ClusterSection, write_group_page
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.training.classify import check_embeddings
from bdisc.training.from_results import EMBEDDINGS_FOLDER, labelled_windows
from bdisc.training.margin import BANDS, DEFAULT_EXPLORE, Strategy, choose, uncertainty
from bdisc.training.model_file import HEAD_FILE, TrainedModel
from bdisc.training.pool import WindowKey, unlabelled_windows, window_key
from bdisc.training.thresholds import class_thresholds

log = logging.getLogger(__name__)

SUGGEST_FILE = "suggest.json"  # marks a folder as a suggestion group
WINDOWS_FILE = "suggested_windows.csv"
OVERVIEW_FILE = "montage.png"
OVERVIEW_CAP = 48  # tiles of the overview montage (every window has its own montage)
WINDOW_COLUMNS = [
    "folder",
    "file",
    "start_s",
    "label",
    "end_s",
    "rank",
    "class",
    "score",
    "threshold",
    "band",
    "margin",
]


@dataclass(frozen=True)
class SuggestConfig:
    results: Path
    out_dir: Path
    n: int = 50
    focus: str | None = None  # one class's threshold only
    strategy: Strategy = "margin"
    seed: int = 0
    # the share of the picks drawn at random instead (margin and top2): see margin.py
    explore: float = DEFAULT_EXPLORE
    overrides: Path | None = None  # per-window labels that count as given
    accept_suggestions: bool = False
    force: bool = False  # replace a suggestion group someone started labelling
    style: SpectrogramStyle = field(default_factory=SpectrogramStyle)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"--n must be >= 1, got {self.n}")
        if not 0.0 <= self.explore <= 1.0:
            raise ConfigError(f"--explore must be in [0, 1], got {self.explore}")


@dataclass(frozen=True)
class Suggestion:
    row: WindowRow  # as its deployment's clusters.csv lists it
    recording: str
    focus: str  # the class its margin is about
    score: float
    threshold: float
    band: str
    margin: float


@dataclass
class SuggestResult:
    suggestions: list[Suggestion]
    pool: int  # unlabelled windows scored
    skipped: int  # windows left out: labelled or waiting for review
    files: list[Path]


def is_suggestion_group(folder: Path) -> bool:
    return (folder / SUGGEST_FILE).is_file()


def _groups(results: Path, out_dir: Path) -> tuple[list[str], list[str]]:
    """(discovery groups, other suggestion groups) of the results folder."""
    groups: list[str] = []
    suggestions: list[str] = []
    for path in sorted(results.glob(f"*/{CLUSTERS_FILE}")):
        folder = path.parent
        if folder.resolve() == out_dir.resolve():
            continue
        (suggestions if is_suggestion_group(folder) else groups).append(folder.name)
    return groups, suggestions


def _check_out(config: SuggestConfig) -> None:
    out = config.out_dir
    if out.resolve().parent == config.results.resolve():
        if (out / CLUSTERS_FILE).is_file() and not is_suggestion_group(out):
            raise ConfigError(
                f"{out} is a discovery group of {config.results}: choose another --out",
                path=str(out),
            )
        if out.name in {EMBEDDINGS_FOLDER, ".bdisc"}:
            raise ConfigError(f"{out.name} is reserved for bdisc's own outputs", path=str(out))
    if config.force:
        return
    labelled = (out / REVIEW_FILE).is_file() and any(
        e.label for e in read_review(out / REVIEW_FILE)
    )
    if (out / WINDOWS_FILE).is_file():
        with (out / WINDOWS_FILE).open(newline="", encoding="utf-8-sig") as f:
            labelled = labelled or any((r.get("label") or "").strip() for r in csv.DictReader(f))
    if labelled:
        raise ConfigError(
            f"{out} holds labels already: train on them first, choose another --out, or "
            "replace it with --force",
            path=str(out),
        )


def _skip(results: Path, config: SuggestConfig, pending_groups: list[str]) -> set[WindowKey]:
    """Windows labelled anywhere, and those waiting in other suggestion groups."""
    labelled = labelled_windows(results, config.overrides, config.accept_suggestions)
    skip = {window_key(rel, start) for rel, items in labelled.items() for start, _ in items}
    names = recording_index(results, "path")
    for group in pending_groups:
        for row in read_clusters(results / group / CLUSTERS_FILE):
            rel = names.get((row.folder, row.file)) or names.get(("*", row.file))
            if rel is not None:
                skip.add(window_key(rel, row.start_s))
    return skip


def suggest(
    model: TrainedModel, config: SuggestConfig, read_span: SpanReader | None = None
) -> SuggestResult:
    """The ``n`` windows to label next, written as a review group in ``out_dir``;
    ``read_span`` reads its montages' audio (default: from the recordings' files)."""
    results = config.results
    _check_out(config)
    focus = None
    if config.focus is not None:
        if config.focus not in model.classes:
            raise ConfigError(
                f"the model has no class {config.focus!r}; its classes: " + ", ".join(model.classes)
            )
        focus = model.classes.index(config.focus)
    groups, pending = _groups(results, config.out_dir)
    if not groups:
        raise ConfigError(f"{results} has no discovery groups (*/{CLUSTERS_FILE})")
    pool = unlabelled_windows(results, groups, _skip(results, config, pending))
    if not len(pool):
        raise ConfigError(f"every window of {results} is labelled or waiting for review")
    check_embeddings(model, pool.provenance, results / EMBEDDINGS_FOLDER)
    scores = model.head.scores(pool.embeddings)
    thresholds = class_thresholds(model)
    strategy: Strategy = "margin" if config.strategy == "random" else config.strategy
    unc = uncertainty(scores, thresholds, strategy, focus)
    rng = np.random.default_rng(config.seed)
    margin = rng.random(len(pool)) if config.strategy == "random" else unc.margin
    picked = choose(
        margin,
        [(r.folder, int(b)) for r, b in zip(pool.rows, unc.band, strict=True)],
        config.n,
        rng,
        [(rec, r.start_s, r.end_s) for rec, r in zip(pool.recordings, pool.rows, strict=True)],
        explore=0.0 if config.strategy == "random" else config.explore,
    )
    chosen = [
        Suggestion(
            pool.rows[i],
            pool.recordings[i],
            model.classes[int(unc.focus[i])],
            float(scores[i, unc.focus[i]]),
            float(thresholds[unc.focus[i]]),
            BANDS[int(unc.band[i])],
            float(unc.margin[i]),
        )
        for i in picked
    ]
    files = write_group(config, model, chosen, results, read_span)
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": str(results),
        "model": {
            "folder": str(model.folder) if model.folder else None,
            "head_sha256": (model.meta.get("files") or {}).get(HEAD_FILE),
            "classes": list(model.classes),
            "thresholds": [round(float(t), 6) for t in thresholds],
        },
        "strategy": config.strategy,
        "explore": config.explore if config.strategy != "random" else None,
        "class": config.focus,
        "n": config.n,
        "seed": config.seed,
        "pool": len(pool),
        "skipped": pool.skipped,
        "suggested": len(chosen),
    }
    path = config.out_dir / SUGGEST_FILE
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
    files.append(path)
    log.info(
        "windows suggested",
        extra=fields(
            suggested=len(chosen), pool=len(pool), skipped=pool.skipped, out=str(config.out_dir)
        ),
    )
    return SuggestResult(chosen, len(pool), pool.skipped, files)


def write_group(
    config: SuggestConfig,
    model: TrainedModel,
    chosen: list[Suggestion],
    results: Path,
    read_span: SpanReader | None = None,
) -> list[Path]:
    """OUT as a discovery group: suggestion k is cluster k."""
    out = config.out_dir
    name = out.name
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        WindowRow(
            s.row.folder,
            s.row.file,
            s.row.start_s,
            s.row.end_s,
            k,
            1.0,
            0.0,
            0.0,
            s.row.top_label,
            s.row.top_confidence,
        )
        for k, s in enumerate(chosen, start=1)
    ]
    write_clusters(out / CLUSTERS_FILE, rows)
    write_review(out / REVIEW_FILE, name, rows)
    atomic_write_text(out / WINDOWS_FILE, _windows_sheet(chosen))
    read = read_span or _source_reader(results)

    def span(row: WindowRow) -> Span:
        rel = f"{row.folder}/{row.file}" if row.folder else row.file
        return Span(rel, row.start_s, row.end_s)

    montages = out / "montages"
    montages.mkdir(exist_ok=True)
    for stale in montages.glob("cluster_*.png"):
        stale.unlink()
    sections = []
    for k, (row, s) in enumerate(zip(rows, chosen, strict=True), start=1):
        title = f"{name} - {k}: {s.focus} {s.score:.2f} (threshold {s.threshold:.2f})"
        png = montage_png(title, [span(row)], read, config.style)
        (montages / f"cluster_{k}.png").write_bytes(png.data)
        top = f"{row.top_label} ({row.top_confidence:.2f})" if row.top_label else ""
        sections.append(ClusterSection(k, 1, top, f"montages/cluster_{k}.png", []))
    overview = montage_png(
        f"{name}: {len(rows)} windows to label (the first {min(len(rows), OVERVIEW_CAP)})",
        [span(r) for r in rows[:OVERVIEW_CAP]],
        read,
        config.style,
    )
    (out / OVERVIEW_FILE).write_bytes(overview.data)
    write_group_page(
        out / "index.html",
        f"{name}: {len(rows)} windows to label",
        f"the windows {', '.join(model.classes)} is least sure of ({config.strategy}); fill "
        f"in the Label column of {REVIEW_FILE} (or of {WINDOWS_FILE})",
        OVERVIEW_FILE,
        sections,
    )
    return [
        out / CLUSTERS_FILE,
        out / REVIEW_FILE,
        out / WINDOWS_FILE,
        out / OVERVIEW_FILE,
        out / "index.html",
    ]


def _source_reader(results: Path) -> SpanReader:
    """Reads a span of a recording (as sheets name it: folder/file) from its file."""
    sources = recording_index(results, "source")

    def read_span(rel: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        folder, file = rel.split("/", 1) if "/" in rel else ("", rel)
        source = sources.get((folder, file)) or sources.get(("*", rel))
        if source is None:
            raise BdiscError(f"no recording known for {rel}")
        return read_segment(Path(source), start_s, end_s)

    return read_span


def _windows_sheet(chosen: list[Suggestion]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(WINDOW_COLUMNS)
    for k, s in enumerate(chosen, start=1):
        writer.writerow(
            [
                s.row.folder,
                s.row.file,
                f"{s.row.start_s:g}",
                "",
                f"{s.row.end_s:g}",
                k,
                s.focus,
                f"{s.score:.4f}",
                f"{s.threshold:.4f}",
                s.band,
                f"{s.margin:.4f}",
            ]
        )
    return buf.getvalue()
