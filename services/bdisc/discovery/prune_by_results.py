"""Prune by BirdNET-Analyzer's result tables: the paper's own combination of its
``analyze.py`` (detections) and ``embeddings.py`` (the windows to cluster).

A window is kept when some detection of its recording covers at least half of it and
passes the label patterns and the minimum confidence (either may be absent: then every
detection of the tables counts, at the tables' own minimum confidence). Recordings are
matched by path: the table's file path (or, for a per-recording table without a ``File``
column, the table's own path) ends with the recording's path under the input root, its
extension aside.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bdisc.discovery.prune import label_matches
from bdisc.errors import ConfigError
from bdisc.interop.analyzer_results import ResultRow, read_results, recording_of
from bdisc.interop.path_match import TailIndex


@dataclass(frozen=True)
class ResultsRule:
    results: Path
    labels: tuple[str, ...] = ()
    min_conf: float | None = None

    def passes(self, row: ResultRow) -> bool:
        if self.min_conf is not None and row.score < self.min_conf:
            return False
        if not self.labels:
            return True
        key = f"{row.scientific}_{row.common}" if row.scientific else row.common
        return label_matches(key, self.labels)


def kept_by_results(
    rule: ResultsRule, recording: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Boolean mask over windows (``recording`` holds their paths under the input root)."""
    rows = read_results([rule.results])
    if not rows:
        raise ConfigError(f"no BirdNET-Analyzer detections found in {rule.results}")
    rels = sorted({str(r) for r in recording})
    finder = TailIndex(((rel,), rel) for rel in rels)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        rel = finder.find(recording_of(row))
        if rel is not None and rule.passes(row):
            spans[rel].append((row.start_s, row.end_s))
    keep = np.zeros(len(recording), dtype=bool)
    for i, (rec, s, e) in enumerate(zip(recording, start, end, strict=True)):
        need = (float(e) - float(s)) / 2
        keep[i] = any(min(e, hi) - max(s, lo) >= need - 1e-9 for lo, hi in spans.get(str(rec), ()))
    return keep
