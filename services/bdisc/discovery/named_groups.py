"""Named groups: sounds BirdNET knows that the clustering left out.

HDBSCAN leaves a rare or scattered sound as noise (-1) when it has too few windows, or
windows too unlike each other, to form a dense cluster; and the background group can
take a faint call whose windows sit close to the recording's background. Yet BirdNET
often names such windows confidently. Windows left as noise, or in the background
group, that BirdNET names as the same bird with at least ``ClusterParams.named_group_score``
form a cluster of their own, one per name, when there are at least the group's minimum
cluster size of them. Clusters the clustering found are never touched, and a sound
BirdNET does not know is left to the clustering: these groups only add what it missed.
A named group's membership (the montage's order of typical members) is BirdNET's score.
"""

from __future__ import annotations

import numpy as np

from bdisc.discovery.background import BACKGROUND_CLUSTER


def named_groups(
    labels: np.ndarray,
    probabilities: np.ndarray,
    names: np.ndarray,
    scores: np.ndarray,
    min_size: int,
    background: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and memberships with the named groups added after the other clusters.
    ``names`` holds BirdNET's name for each window it names confidently as a bird, ""
    for the others; ``background`` says whether cluster 0 is the background group."""
    spare = labels < 0
    if background:
        spare |= labels == BACKGROUND_CLUSTER
    out, membership = labels.copy(), probabilities.astype(np.float64, copy=True)
    next_id = max(int(labels.max(initial=-1)) + 1, 1 if background else 0)
    candidates = spare & (names != "")
    counts: dict[str, int] = {}
    for name in names[candidates].tolist():
        counts[name] = counts.get(name, 0) + 1
    # the most common first, then by name: the same input numbers them the same way
    for name in sorted(
        (n for n, c in counts.items() if c >= min_size), key=lambda n: (-counts[n], n)
    ):
        rows = candidates & (names == name)
        out[rows] = next_id
        membership[rows] = np.asarray(scores, dtype=np.float64)[rows]
        next_id += 1
    return out, membership
