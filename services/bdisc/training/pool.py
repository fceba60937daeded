"""The windows of a ``bdisc discover`` results folder that nobody has labelled yet, with
their stored embeddings: the pool active learning picks from.

A window is in the pool when a group's clusters.csv lists it (only those can be
labelled: export and train find windows there) and it is neither labelled (a labelled
cluster's windows, per-window labels; what training reads, see ``from_results``) nor
waiting in another suggestion group for its review.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.discovery.sheets import CLUSTERS_FILE, WindowRow, read_clusters
from bdisc.errors import NotFound
from bdisc.outputs.embeddings import embedding_matrix
from bdisc.training.from_results import (
    EMBEDDINGS_FOLDER,
    nearest_start,
    read_stored,
    stored_recordings,
)

WindowKey = tuple[str, float]  # (recording as the embeddings name it, start rounded to ms)


def window_key(recording: str, start_s: float) -> WindowKey:
    return (recording, round(float(start_s), 3))


@dataclass(frozen=True)
class Pool:
    rows: tuple[WindowRow, ...]  # as the group's clusters.csv lists them
    recordings: tuple[str, ...]  # each window's recording, as the embeddings name it
    embeddings: np.ndarray  # float32 (N, 1024)
    provenance: dict[str, Any]  # the embeddings' window provenance
    skipped: int  # windows left out: labelled, or waiting for review elsewhere

    def __len__(self) -> int:
        return len(self.rows)


def unlabelled_windows(results: Path, groups: Sequence[str], skip: Collection[WindowKey]) -> Pool:
    """The windows of these groups' clusters.csv (each once) whose key is not in
    ``skip``, with their embeddings."""
    names = stored_recordings(results)
    rows: dict[WindowKey, tuple[WindowRow, str]] = {}
    skipped = 0
    for group in groups:
        for row in read_clusters(results / group / CLUSTERS_FILE):
            rel = names.get((row.folder, row.file)) or names.get(("*", row.file))
            if rel is None:
                raise NotFound(
                    f"{results / group / CLUSTERS_FILE} lists {row.folder}/{row.file}, which "
                    f"has no embeddings under {results / EMBEDDINGS_FOLDER}"
                )
            key = window_key(rel, row.start_s)
            if key in skip:
                skipped += 1
            elif key not in rows:
                rows[key] = (row, rel)
    if not rows:
        return Pool((), (), np.zeros((0, 0), dtype=np.float32), {}, skipped)
    return _with_embeddings(results, list(rows.values()), skipped)


def _with_embeddings(results: Path, items: list[tuple[WindowRow, str]], skipped: int) -> Pool:
    recordings = sorted({rel for _, rel in items})
    table, provenance = read_stored(results, recordings)
    matrix = embedding_matrix(table)
    stored = np.asarray(table.column("recording").to_pylist(), dtype=object)
    starts = table.column("start_s").to_numpy()
    by_recording: dict[str, np.ndarray] = {}
    for rel in recordings:
        mine = np.flatnonzero(stored == rel)
        by_recording[rel] = mine[np.argsort(starts[mine], kind="stable")]
    kept_rows, kept_recs, taken = [], [], []
    for row, rel in items:
        order = by_recording[rel]
        near = nearest_start(starts[order], row.start_s)
        if near is None:
            skipped += 1  # listed, but without a stored embedding: cannot be scored
            continue
        kept_rows.append(row)
        kept_recs.append(rel)
        taken.append(int(order[near]))
    return Pool(
        tuple(kept_rows),
        tuple(kept_recs),
        np.ascontiguousarray(matrix[np.asarray(taken, dtype=np.int64)]),
        provenance,
        skipped,
    )
