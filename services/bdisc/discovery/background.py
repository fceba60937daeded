"""The background group: what a recorder hears when nothing calls, set aside as one cluster.

Most windows of a field recording are background (wind, traffic, insects, the recorder's
own noise), and a clustering splits them into dozens of look-alike clusters that a
reviewer must open one by one. Each window gets a **foreground score**: the cosine
distance of its embedding to its recording's background, the median of the recording's
unit embeddings (the deployment's median for recordings of fewer than
``MIN_RECORDING_WINDOWS`` windows). A cluster becomes background when its median score is
under ``threshold`` **and** most of its windows are quiet (at or below their recording's
median level): calls add energy, so a focal recording full of one song, whose median is
the song itself, keeps its song. Background clusters, and quiet noise windows under the
threshold, become one cluster, numbered 0; the other clusters keep their order, numbered
from 1. The threshold is capped at the 60th percentile of the deployment's scores (see
below).

On ``bench/discovery_quality.py`` a threshold of 0.2 cuts the clusters to open from 749
to 413 and lifts the V-measure of sound types from 0.45 to 0.56, for one type-run pair
less discovered (65 to 64 of 72). Species clusters score 0.24 to 0.42 there, background
clusters 0.08 to 0.29 (5th to 95th percentile).
"""

from __future__ import annotations

import numpy as np

BACKGROUND_CLUSTER = 0
MIN_RECORDING_WINDOWS = 30
# In a dense chorus every window holds calls and a recording's median is the chorus
# itself: the threshold never exceeds this quantile of the deployment's scores, so the
# background group cannot swallow a deployment (the bundled 2-min dawn chorus keeps 3
# clusters besides it instead of 1; the benchmark does not move).
MAX_BACKGROUND_QUANTILE = 0.6


MEDIAN_SAMPLE = 20_000  # a deployment's median is taken over at most this many windows


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """The embeddings scaled to unit length (float32): cosine geometry. Call it on a
    recording or a chunk: a million 1024-d windows are 4 GiB per copy."""
    x = np.asarray(embeddings, dtype=np.float32)
    return np.asarray(x / (np.linalg.norm(x, axis=1, keepdims=True) + np.float32(1e-12)))


def median_unit(embeddings: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The median of the unit embeddings of ``rows`` (all by default), over a seeded
    sample of at most ``MEDIAN_SAMPLE`` of them."""
    idx = np.arange(len(embeddings)) if rows is None else rows
    if len(idx) > MEDIAN_SAMPLE:
        idx = np.sort(np.random.default_rng(0).choice(idx, MEDIAN_SAMPLE, replace=False))
    if not len(idx):
        return np.zeros(embeddings.shape[1])
    return np.asarray(np.median(unit_rows(embeddings[idx]), axis=0), dtype=np.float64)


def recording_rows(recordings: np.ndarray) -> list[np.ndarray]:
    """The window indices of each recording (one pass, not one scan per recording)."""
    _, index, counts = np.unique(recordings, return_inverse=True, return_counts=True)
    return np.split(np.argsort(index, kind="stable"), np.cumsum(counts)[:-1])


def foreground_scores(embeddings: np.ndarray, recordings: np.ndarray) -> np.ndarray:
    """Cosine distance of each window to its recording's median embedding."""
    scores = np.zeros(len(embeddings))
    if not len(embeddings):
        return scores
    fallback = median_unit(embeddings)
    for rows in recording_rows(recordings):
        own = len(rows) >= MIN_RECORDING_WINDOWS
        centre = median_unit(embeddings, rows) if own else fallback
        centre /= np.linalg.norm(centre) + 1e-12
        scores[rows] = 1.0 - unit_rows(embeddings[rows]) @ centre
    return scores


def quiet_windows(levels: np.ndarray, recordings: np.ndarray) -> np.ndarray:
    """Windows at or below their recording's median level (dBFS)."""
    quiet = np.zeros(len(levels), dtype=bool)
    for rows in recording_rows(recordings):
        quiet[rows] = levels[rows] <= np.median(levels[rows])
    return quiet


def group_background(
    labels: np.ndarray, scores: np.ndarray, threshold: float, quiet: np.ndarray | None = None
) -> tuple[np.ndarray, bool]:
    """Labels with the background clusters (and background-like noise windows) merged
    into cluster 0 and the others renumbered from 1; and whether a background group
    was found. ``quiet`` marks quiet windows (None: all are); ``threshold`` 0 leaves
    the labels as they are."""
    if threshold <= 0 or not len(labels):
        return labels, False
    quiet = np.ones(len(labels), dtype=bool) if quiet is None else quiet
    threshold = min(threshold, float(np.quantile(scores, MAX_BACKGROUND_QUANTILE)))
    clusters = sorted(k for k in set(labels.tolist()) if k >= 0)
    background = {
        k
        for k in clusters
        if np.median(scores[labels == k]) < threshold and quiet[labels == k].mean() >= 0.5
    }
    if not background:
        return labels, False
    new_id = {k: BACKGROUND_CLUSTER for k in background}
    for k in clusters:
        if k not in background:
            new_id[k] = len(new_id) - len(background) + 1
    out = np.array([new_id.get(int(k), -1) for k in labels.tolist()], dtype=np.int64)
    out[(labels < 0) & (scores < threshold) & quiet] = BACKGROUND_CLUSTER
    return out, True
