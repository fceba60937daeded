"""A run's windows as parallel arrays: loaded from embeddings files, pruned by rules."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.discovery.prune import PruneRules, WindowClassifier, prune
from bdisc.discovery.recordings import Recording
from bdisc.errors import NotFound
from bdisc.logs import fields
from bdisc.outputs.embeddings import embedding_matrix, embeddings_path, read_embeddings
from bdisc.outputs.names import name_clashes

log = logging.getLogger(__name__)


@dataclass
class Windows:
    """All windows of the run as parallel arrays."""

    rel: np.ndarray
    folder: np.ndarray
    file: np.ndarray
    start: np.ndarray
    end: np.ndarray
    embedding: np.ndarray
    top_label: np.ndarray
    top_score: np.ndarray
    level: np.ndarray

    def take(self, mask: np.ndarray) -> Windows:
        return Windows(**{k: v[mask] for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return len(self.rel)


def windows_from_files(
    files: Sequence[Path], where: dict[str, tuple[str, str]]
) -> tuple[Windows, dict[str, Any]]:
    """All windows of these embeddings files; ``where`` maps each recording (its relative
    path, as the files name it) to its (folder, file). Refuses mixed provenance."""
    if not files:
        raise NotFound("no recording could be embedded: see errors.csv in the output folder")
    table, provenance = read_embeddings(files)
    rel = np.array(table.column("recording").to_pylist(), dtype=object)
    tops = table.column("top_labels").to_pylist()
    scores = table.column("top_scores").to_pylist()
    return Windows(
        rel=rel,
        folder=np.array([where[r][0] for r in rel], dtype=object),
        file=np.array([where[r][1] for r in rel], dtype=object),
        start=table.column("start_s").to_numpy(),
        end=table.column("end_s").to_numpy(),
        embedding=embedding_matrix(table),
        top_label=np.array([t[0] if t else "" for t in tops], dtype=object),
        top_score=np.array([s[0] if s else 0.0 for s in scores], dtype=np.float64),
        level=table.column("rms_dbfs").to_numpy(),
    ), provenance


def prune_windows(
    windows: Windows, rules: PruneRules, classifier: WindowClassifier | None = None
) -> tuple[Windows, dict[str, int]]:
    """The windows the rules keep, and how many each rule removed."""
    keep, removed = prune(
        windows.top_label,
        windows.top_score,
        windows.level,
        windows.rel,
        rules,
        windows.embedding,
        classifier,
    )
    kept = windows.take(keep)
    log.info("windows pruned", extra=fields(windows=len(windows), kept=len(kept), **removed))
    return kept, removed


def load_windows(recs: Sequence[Recording], out_dir: Path) -> tuple[Windows, dict[str, Any]]:
    # a recording refused for a name clash has no file of its own: the path it names is
    # the kept recording's, whose windows would otherwise be read twice
    clashes = name_clashes(r.rel for r in recs)
    files = [embeddings_path(out_dir / "embeddings", r.rel) for r in recs if r.rel not in clashes]
    return windows_from_files(
        [f for f in files if f.is_file()], {r.rel: (r.folder, r.file) for r in recs}
    )
