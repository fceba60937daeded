"""Labels survive re-clustering: each old cluster is matched to the new cluster that holds
the same windows (one to one, by Jaccard overlap of their members, best pairs first);
a label of a matched cluster moves to its new number, a label of a cluster without a
match (its windows went different ways) becomes a label of each of its windows, so
nothing a reviewer said is lost. The matching is reported, never silent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

WindowKey = tuple[str, float, float]  # (recording, start_s, end_s)
MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class Move:
    old: int
    new: int | None  # None: no new cluster holds most of it
    overlap: float  # Jaccard overlap of the old and new members
    windows: tuple[WindowKey, ...] = ()  # the old members, when unmatched


def match_clusters(
    old: Mapping[WindowKey, int], new: Mapping[WindowKey, int], min_overlap: float = MIN_OVERLAP
) -> list[Move]:
    """A move for every old cluster, in old-cluster order."""
    old_members: dict[int, set[WindowKey]] = defaultdict(set)
    new_members: dict[int, set[WindowKey]] = defaultdict(set)
    for key, cluster in old.items():
        old_members[cluster].add(key)
    for key, cluster in new.items():
        new_members[cluster].add(key)
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for key, cluster in old.items():
        if key in new:
            pairs[(cluster, new[key])] += 1
    scored = sorted(
        ((shared / len(old_members[a] | new_members[b]), a, b) for (a, b), shared in pairs.items()),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    matched: dict[int, tuple[int, float]] = {}
    taken: set[int] = set()
    for overlap, a, b in scored:
        if overlap <= min_overlap:  # more than half of the union in common
            break
        if a not in matched and b not in taken:
            matched[a] = (b, overlap)
            taken.add(b)
    moves = []
    for cluster in sorted(old_members):
        if cluster in matched:
            new_cluster, overlap = matched[cluster]
            moves.append(Move(cluster, new_cluster, round(overlap, 4)))
        else:
            best = max((o for o, a, _ in scored if a == cluster), default=0.0)
            moves.append(Move(cluster, None, round(best, 4), tuple(sorted(old_members[cluster]))))
    return moves
