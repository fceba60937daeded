"""A search's matches as files: ``matches.csv``, ``montage.png``, and a review group laid
out like a discovery deployment (``clusters.csv`` and ``review.csv``, one cluster, 1 =
the matches), so that labelling it and ``bdisc export --review OUT/review.csv --results
RESULTS`` cut the matches into a training set.

The sheet's Folder is the output folder relative to the results folder (a discovery
group's is its subfolder's name), which is where export looks for its clusters.csv.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bdisc.audio.segments import read_segment
from bdisc.discovery.sheets import (
    CLUSTERS_FILE,
    REVIEW_FILE,
    WindowRow,
    read_review,
    write_clusters,
    write_review,
)
from bdisc.errors import BdiscError
from bdisc.fsutil import atomic_write_text
from bdisc.logs import fields
from bdisc.render.montage import Span, SpanReader, montage_png
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.search.matches import Match

log = logging.getLogger(__name__)

MATCHES_FILE = "matches.csv"
MONTAGE_FILE = "montage.png"
MATCH_COLUMNS = ["rank", "distance", "recording", "start_s", "end_s", "folder", "file"]
MATCHES_CLUSTER = 1


def group_name(out: Path, results: Path) -> str:
    """The review sheet's Folder: where ``out`` is, seen from ``results``."""
    return Path(os.path.relpath(out.resolve(), results.resolve())).as_posix()


def write_matches(path: Path, matches: Sequence[Match]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MATCH_COLUMNS)
    for m in matches:
        writer.writerow(
            [
                m.rank,
                f"{m.distance:.6f}",
                m.recording,
                f"{m.start_s:g}",
                f"{m.end_s:g}",
                m.folder,
                m.file,
            ]
        )
    atomic_write_text(path, buf.getvalue())


def write_review_group(out: Path, results: Path, matches: Sequence[Match]) -> str:
    """clusters.csv and review.csv of the matches (one cluster); returns the group's
    Folder. A labelled sheet already there is kept as review.<time>.csv."""
    name = group_name(out, results)
    rows = [
        WindowRow(
            m.folder,
            m.file,
            m.start_s,
            m.end_s,
            MATCHES_CLUSTER,
            min(1.0, max(0.0, 1.0 - m.distance)),  # the closer, the more typical
            0.0,
            0.0,
            m.top_label,
            m.top_score,
        )
        for m in matches
    ]
    write_clusters(out / CLUSTERS_FILE, rows)
    _keep_labelled(out / REVIEW_FILE)
    write_review(out / REVIEW_FILE, name, rows)
    return name


def write_montage(
    path: Path,
    title: str,
    matches: Sequence[Match],
    style: SpectrogramStyle,
    read_span: SpanReader | None = None,
) -> None:
    """Spectrogram tiles of the matches, nearest first, read from their recordings: by
    ``read_span`` (given a match's recording as the results name it), or from the file
    each recording was read from."""

    def read(source: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        return read_segment(Path(source), start_s, end_s)

    if read_span is None:
        spans = [Span(m.source, m.start_s, m.end_s) for m in matches]
        png = montage_png(title, spans, read, style)
    else:
        spans = [Span(m.recording, m.start_s, m.end_s) for m in matches]
        png = montage_png(title, spans, read_span, style)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png.data)


def _keep_labelled(path: Path) -> None:
    if not path.is_file():
        return
    try:
        labelled = any(e.label for e in read_review(path))
    except (BdiscError, UnicodeDecodeError):
        labelled = True  # not readable as a sheet: keep it, whatever it holds
    if labelled:
        backup = path.with_name(f"review.{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.csv")
        shutil.copy2(path, backup)
        log.warning("labelled review sheet kept: new matches", extra=fields(sheet=str(backup)))
