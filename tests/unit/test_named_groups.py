"""Named groups: windows the clustering left as noise, or put in the background group,
that BirdNET names as the same bird become a cluster of their own."""

from __future__ import annotations

import numpy as np

from bdisc.discovery.named_groups import named_groups

MAGPIE, WREN = "Pica pica_Eurasian Magpie", "Troglodytes troglodytes_Eurasian Wren"


def test_noise_and_background_windows_named_alike_form_clusters() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, -1, -1, -1, -1, -1])
    names = np.array([MAGPIE, "", "", MAGPIE, "", "", MAGPIE, MAGPIE, WREN, WREN, ""])
    scores = np.array([0.9, 0, 0, 0.8, 0, 0, 0.7, 0.6, 0.9, 0.9, 0])
    probs = np.full(len(labels), 0.5)
    out, membership = named_groups(labels, probs, names, scores, 3, background=True)
    # three magpie windows: one from the background group, two left as noise; the one
    # in cluster 1 stays where the clustering put it; two wrens are too few
    assert out.tolist() == [3, 0, 0, 1, 1, 2, 3, 3, -1, -1, -1]
    assert membership[[0, 6, 7]].tolist() == [0.9, 0.7, 0.6]
    assert membership[[1, 3, 8]].tolist() == [0.5, 0.5, 0.5]


def test_without_a_background_group_cluster_0_is_a_cluster() -> None:
    labels = np.array([0, 0, -1, -1, -1, -1])
    names = np.array([WREN, WREN, WREN, WREN, MAGPIE, ""])
    scores = np.where(names != "", 0.8, 0.0)
    out, _ = named_groups(labels, np.zeros(6), names, scores, 2, background=False)
    assert out.tolist() == [0, 0, 1, 1, -1, -1]


def test_only_noise_gets_numbers_after_the_background_group() -> None:
    labels = np.array([0, 0, -1, -1, -1, -1])
    names = np.array(["", "", WREN, WREN, MAGPIE, MAGPIE])
    scores = np.where(names != "", 0.8, 0.0)
    out, _ = named_groups(labels, np.zeros(6), names, scores, 2, background=True)
    # the larger group first; on a tie, by name
    assert out.tolist() == [0, 0, 2, 2, 1, 1]
