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


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """The embeddings scaled to unit length (float64): cosine geometry."""
    x = embeddings.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    return x


def foreground_scores(embeddings: np.ndarray, recordings: np.ndarray) -> np.ndarray:
    """Cosine distance of each window to its recording's median embedding."""
    x = unit_rows(embeddings)
    scores = np.zeros(len(x))
    if not len(x):
        return scores
    names, index, counts = np.unique(recordings, return_inverse=True, return_counts=True)
    fallback = np.median(x, axis=0)
    for i in range(len(names)):
        members = index == i
        centre = np.median(x[members], axis=0) if counts[i] >= MIN_RECORDING_WINDOWS else fallback
        centre /= np.linalg.norm(centre) + 1e-12
        scores[members] = 1.0 - x[members] @ centre
    return scores


def quiet_windows(levels: np.ndarray, recordings: np.ndarray) -> np.ndarray:
    """Windows at or below their recording's median level (dBFS)."""
    quiet = np.zeros(len(levels), dtype=bool)
    for name in np.unique(recordings):
        members = recordings == name
        quiet[members] = levels[members] <= np.median(levels[members])
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
