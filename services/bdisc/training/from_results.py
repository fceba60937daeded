"""A training set from a ``bdisc discover`` results folder: the windows ``bdisc export``
would cut, with their labels, and their stored embeddings (no audio is read).

Per deployment, ``results/<folder>/review.csv`` names the labels of its clusters (keyed
by folder and cluster) and ``results/<folder>/clusters.csv`` the windows of each
cluster; per-window labels (a lasso in ``bdisc review``, ``bdisc import-labels``; an
overrides sheet) win over their cluster's, and with ``accept_suggestions`` the project's
suggested labels count, exactly as export's ``plan`` decides. ``results/embeddings/``
holds every window's embedding, named by the recording's path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bdisc.discovery.export import ExportConfig, plan, recording_index
from bdisc.discovery.sheets import REVIEW_FILE
from bdisc.errors import IncompatibleArtifact, NotFound
from bdisc.logs import fields
from bdisc.outputs.embeddings import embedding_matrix, embeddings_path, read_embeddings
from bdisc.training.dataset import TrainingSet, assemble

log = logging.getLogger(__name__)

EMBEDDINGS_FOLDER = "embeddings"


def is_results_folder(path: Path) -> bool:
    return (path / EMBEDDINGS_FOLDER).is_dir() and any(path.glob(f"*/{REVIEW_FILE}"))


def _tolerance(start: float) -> float:
    """clusters.csv writes times with 6 significant digits."""
    return max(1e-3, 1e-5 * abs(start))


def stored_recordings(results: Path) -> dict[tuple[str, str], str]:
    """(folder, file) -> the recording's name in its embeddings (``export.recording_index``);
    IncompatibleArtifact when an embeddings file cannot be read."""
    try:
        return recording_index(results, "path")
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise IncompatibleArtifact(
            f"an embeddings file under {results / EMBEDDINGS_FOLDER} cannot be read ({exc})",
            path=str(results / EMBEDDINGS_FOLDER),
        ) from exc


def read_stored(results: Path, recordings: list[str]) -> tuple[pa.Table, dict[str, Any]]:
    """The stored embeddings of these recordings (as the embeddings name them) and their
    shared provenance; IncompatibleArtifact when a file cannot be read."""
    emb_dir = results / EMBEDDINGS_FOLDER
    try:
        return read_embeddings([embeddings_path(emb_dir, rel) for rel in recordings])
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise IncompatibleArtifact(
            f"an embeddings file under {emb_dir} cannot be read ({exc})", path=str(emb_dir)
        ) from exc


def labelled_windows(
    results: Path, overrides: Path | None = None, accept_suggestions: bool = False
) -> dict[str, list[tuple[float, str]]]:
    """recording (as the embeddings name it) -> its labelled windows (start, label)."""
    sheets = sorted(results.glob(f"*/{REVIEW_FILE}"))
    if not sheets:
        raise NotFound(f"no review sheets (*/{REVIEW_FILE}) in {results}", path=str(results))
    recordings = stored_recordings(results)
    wanted: dict[str, list[tuple[float, str]]] = defaultdict(list)
    # with accept_suggestions the first sheet's plan holds every sheet's labels already;
    # windows that several plans name (a per-window label) are kept once by assemble
    for sheet in sheets[:1] if accept_suggestions else sheets:
        config = ExportConfig(
            review=sheet,
            results=results,
            out=results,  # plan writes nothing
            overrides=overrides,
            accept_suggestions=accept_suggestions,
        )
        for clip in plan(config, recordings):
            wanted[clip.source].append((clip.start_s, clip.label))
    return dict(wanted)


def from_results(
    results: Path, overrides: Path | None = None, accept_suggestions: bool = False
) -> TrainingSet:
    wanted = labelled_windows(results, overrides, accept_suggestions)
    if not wanted:
        raise NotFound(
            f"no labelled window in {results}: label clusters in the review sheets first",
            path=str(results),
        )
    table, provenance = read_stored(results, sorted(wanted))
    matrix = embedding_matrix(table)
    recs = np.asarray(table.column("recording").to_pylist(), dtype=object)
    starts = table.column("start_s").to_numpy()
    ends = table.column("end_s").to_numpy()
    by_recording: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(recs):
        by_recording[str(rec)].append(i)
    rows, labels_out = [], []
    unmatched = 0
    for rel, items in sorted(wanted.items()):
        mine = np.asarray(by_recording.get(rel, []), dtype=np.int64)
        order = mine[np.argsort(starts[mine], kind="stable")]
        sorted_starts = starts[order]
        for start, label in items:
            near = nearest_start(sorted_starts, start)
            if near is None:
                unmatched += 1
                continue
            rows.append(int(order[near]))
            labels_out.append(label)
    if unmatched:
        log.warning(
            "labelled windows without a stored embedding were left out",
            extra=fields(windows=unmatched, results=str(results)),
        )
    taken = np.asarray(rows, dtype=np.int64)
    return assemble(
        matrix[taken],
        labels_out,
        [str(recs[i]) for i in taken],
        [float(starts[i]) for i in taken],
        provenance,
        [float(ends[i]) for i in taken],
    )


def nearest_start(sorted_starts: np.ndarray, start: float) -> int | None:
    """Index of the stored window starting at ``start`` (to the precision of the sheet)."""
    if len(sorted_starts) == 0:
        return None
    i = int(np.searchsorted(sorted_starts, start))
    candidates = [j for j in (i - 1, i) if 0 <= j < len(sorted_starts)]
    best = min(candidates, key=lambda j: abs(float(sorted_starts[j]) - start))
    return best if abs(float(sorted_starts[best]) - start) <= _tolerance(start) else None
