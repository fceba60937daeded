"""Matching the clusters of two clusterings of one deployment, so labels follow them."""

from __future__ import annotations

from bdisc.discovery.relabel import Move, match_clusters


def windows(cluster: int, recording: str, starts: range) -> dict[tuple[str, float, float], int]:
    return {(recording, float(s), float(s) + 3.0): cluster for s in starts}


def test_renumbered_clusters_are_matched_one_to_one() -> None:
    old = {**windows(0, "a.wav", range(0, 30, 3)), **windows(1, "b.wav", range(0, 30, 3))}
    new = {**windows(7, "a.wav", range(0, 30, 3)), **windows(2, "b.wav", range(0, 27, 3))}
    assert match_clusters(old, new) == [Move(0, 7, 1.0), Move(1, 2, 0.9)]


def test_a_cluster_that_fell_apart_keeps_its_windows() -> None:
    old = windows(4, "a.wav", range(0, 12, 3))  # four windows
    new = {**windows(1, "a.wav", range(0, 6, 3)), **windows(2, "a.wav", range(6, 12, 3))}
    (move,) = match_clusters(old, new)
    assert (move.old, move.new, move.overlap) == (4, None, 0.5)  # below "most of it"
    assert move.windows == tuple(sorted(old))


def test_two_old_clusters_merged_into_one_new_the_closer_wins() -> None:
    old = {**windows(0, "a.wav", range(0, 18, 3)), **windows(1, "a.wav", range(18, 24, 3))}
    new = windows(5, "a.wav", range(0, 24, 3))  # 6 + 2 windows merged
    moves = {m.old: m for m in match_clusters(old, new)}
    assert moves[0].new == 5 and moves[0].overlap == 0.75
    assert moves[1].new is None and len(moves[1].windows) == 2  # its label: per window


def test_windows_gone_from_the_new_clustering_count_against_the_match() -> None:
    old = windows(3, "a.wav", range(0, 30, 3))
    new = windows(3, "a.wav", range(0, 12, 3))  # pruned away: 4 of 10 remain
    (move,) = match_clusters(old, new)
    assert move.new is None and move.overlap == 0.4
