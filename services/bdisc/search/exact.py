"""Exact cosine search with numpy, the yardstick of the approximate index's recall."""

from __future__ import annotations

import numpy as np

from bdisc.search.window_index import unit_rows

# Query rows per matrix product: bounds the (rows x N) distance block in memory.
CHUNK = 256


def exact_search(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``base`` for each query: ids (int64) and cosine distances
    (float32), nearest first."""
    b = unit_rows(base)
    q = unit_rows(np.atleast_2d(queries))
    k = min(k, b.shape[0])
    ids = np.empty((q.shape[0], k), dtype=np.int64)
    dist = np.empty((q.shape[0], k), dtype=np.float32)
    for lo in range(0, q.shape[0], CHUNK):
        d = 1.0 - q[lo : lo + CHUNK] @ b.T
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        rows = np.arange(part.shape[0])[:, None]
        order = np.argsort(d[rows, part], axis=1, kind="stable")
        ids[lo : lo + CHUNK] = part[rows, order]
        dist[lo : lo + CHUNK] = d[rows, part[rows, order]]
    return ids, dist


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """The share of the true ``k`` nearest neighbours (rows of ``truth``) that ``found``
    holds, over all queries."""
    k = truth.shape[1]
    hits = sum(
        len(set(f[:k].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / truth.size if truth.size else 1.0
