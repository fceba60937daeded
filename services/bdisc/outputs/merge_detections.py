"""BirdNET-Analyzer 2.4's ``--merge_consecutive N``, reproduced row for row.

Per species, detections whose windows touch or overlap (end >= next start) are joined,
at most N at a time, into one row from the first start to the last end, scored by the
mean of its (up to) three highest scores. The order of the rows follows BirdNET-Analyzer:
windows by start time; within a window, species in the order they were first detected.
Its quirks are kept on purpose (a merged row is not compared again with the row after
it; the first two rows of a run always merge), so that the files match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timed(Generic[T]):
    start_s: float
    end_s: float
    species: str
    score: float
    item: T  # what the caller wants back (the first row of a merged run)


def merge_consecutive(rows: Sequence[Timed[T]], max_consecutive: int) -> list[Timed[T]]:
    """``rows`` in BirdNET-Analyzer's order (window by window, best score first)."""
    if max_consecutive <= 1:
        return list(rows)
    by_species: dict[str, list[Timed[T]]] = {}
    for row in rows:
        by_species.setdefault(row.species, []).append(row)
    by_window: dict[tuple[float, float], list[Timed[T]]] = {}
    for runs in by_species.values():
        for merged in _merge_runs(sorted(runs, key=lambda r: r.start_s), max_consecutive):
            by_window.setdefault((merged.start_s, merged.end_s), []).append(merged)
    ordered = sorted(by_window, key=lambda window: window[0])
    return [row for window in ordered for row in by_window[window]]


def _merge_runs(rows: list[Timed[T]], max_consecutive: int) -> list[Timed[T]]:
    out = list(rows)
    i = 0
    while i < len(out) - 1:
        first, second = out[i], out[i + 1]
        if first.end_s >= second.start_s:
            scores = [first.score, second.score]
            end = second.end_s
            out.pop(i)
            while i < len(out) - 1 and end >= out[i + 1].start_s:
                if len(scores) >= max_consecutive:
                    break
                scores.append(out[i + 1].score)
                end = out[i + 1].end_s
                out.pop(i + 1)
            top = sorted(scores, reverse=True)[:3]
            out[i] = Timed(first.start_s, end, first.species, sum(top) / len(top), first.item)
        i += 1
    return out
