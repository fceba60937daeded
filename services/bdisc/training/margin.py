"""Which unlabelled windows to label next (active learning by margin sampling).

A head's scores are independent sigmoids, so a window is uncertain for a class when its
score is close to that class's decision threshold (the best-F1 threshold of the
validation, else 0.5); without a chosen class, a window's margin is that of its most
uncertain class. ``top2`` instead takes the gap between the two best classes' scores.

The pick is spread: the most uncertain windows (``pool_factor`` times as many as asked
for) are dealt out by stratum (deployment folder x score band) in turn, each stratum
giving its most uncertain window first, and a window overlapping one already picked in
the same recording is passed over (neighbouring windows are near copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bdisc.errors import ConfigError

Strategy = Literal["margin", "top2", "random"]
STRATEGIES: tuple[Strategy, ...] = ("margin", "top2", "random")
DEFAULT_THRESHOLD = 0.5
POOL_FACTOR = 4  # stratify among the 4n most uncertain windows
# The share of picks drawn at random (bench/agile_loop.py: measured on the Screaming Piha
# calls; margin sampling alone trails random picks while the head knows few labels).
DEFAULT_EXPLORE = 0.5
# Score bands, relative to the threshold t: far below, just below, just above, far above.
BANDS = ("low", "below", "above", "high")


@dataclass(frozen=True)
class Uncertainty:
    margin: np.ndarray  # float (N,): smaller is more uncertain
    focus: np.ndarray  # int (N,): the class the margin is about
    band: np.ndarray  # int (N,): index into BANDS of that class's score


def uncertainty(
    scores: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    strategy: Strategy = "margin",
    focus_class: int | None = None,
) -> Uncertainty:
    """Margins of (N, C) sigmoid scores. ``focus_class``: only that class counts."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != len(t):
        raise ValueError(f"scores of shape {s.shape} for {len(t)} thresholds")
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose {', '.join(STRATEGIES)}")
    n = s.shape[0]
    if focus_class is not None:
        focus = np.full(n, focus_class, dtype=np.int64)
    elif strategy == "top2" and s.shape[1] >= 2:
        focus = np.argmax(s, axis=1)
    else:
        focus = np.argmin(np.abs(s - t), axis=1) if n else np.zeros(0, dtype=np.int64)
    rows = np.arange(n)
    score, threshold = s[rows, focus], t[focus]
    if strategy == "top2" and focus_class is None and s.shape[1] >= 2:
        top = np.sort(s, axis=1)
        margin = top[:, -1] - top[:, -2]
    else:
        margin = np.abs(score - threshold)
    return Uncertainty(margin, focus, score_band(score, threshold))


def score_band(score: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """0 below t/2, 1 below t, 2 below (1 + t)/2, 3 above."""
    edges = np.stack([threshold / 2, threshold, (1.0 + threshold) / 2], axis=-1)
    band: np.ndarray = np.sum(np.asarray(score)[:, None] >= edges, axis=1).astype(np.int64)
    return band


def choose(
    margin: np.ndarray,
    strata: Sequence[object],
    n: int,
    rng: np.random.Generator,
    spans: Sequence[tuple[str, float, float]] | None = None,
    pool_factor: int = POOL_FACTOR,
    explore: float = 0.0,
) -> list[int]:
    """Indices of up to ``n`` windows, most uncertain first within each stratum, the
    strata taken in turn. Ties are broken at random (seeded); ``spans`` (recording,
    start, end) make windows overlapping a picked one in its recording ineligible.
    ``explore``: the share of the picks that are windows drawn at random instead (a
    head trained on a few labels is a poor judge of what it is unsure of)."""
    if n < 1:
        raise ConfigError(f"the number of windows to suggest must be >= 1, got {n}")
    if not 0.0 <= explore <= 1.0:
        raise ConfigError(f"the share of random picks must be in [0, 1], got {explore}")
    m = np.array(margin, dtype=np.float64)
    if len(strata) != len(m) or (spans is not None and len(spans) != len(m)):
        raise ValueError("margins, strata and spans differ in length")
    drawn = round(explore * n)
    if drawn:  # taken first: below any margin
        m[rng.permutation(len(m))[:drawn]] = -1.0
    order = np.lexsort((rng.random(len(m)), m))  # by margin, ties at random
    pool = order[: max(n, pool_factor * n)]
    queues: dict[object, list[int]] = {}
    for i in pool:
        queues.setdefault(strata[int(i)], []).append(int(i))
    # strata with the most uncertain windows go first in each turn
    turn = sorted(queues, key=lambda k: float(m[queues[k][0]]))
    picked: list[int] = []
    taken: dict[str, list[tuple[float, float]]] = {}
    while len(picked) < n and any(queues.values()):
        for key in turn:
            queue = queues[key]
            while queue:
                i = queue.pop(0)
                if spans is None or not _overlaps(taken, spans[i]):
                    picked.append(i)
                    if spans is not None:
                        taken.setdefault(spans[i][0], []).append(spans[i][1:])
                    break
            if len(picked) == n:
                break
    for i in order[len(pool) :]:  # overlaps left the pool short: the next most uncertain
        if len(picked) == n:
            break
        if spans is None or not _overlaps(taken, spans[int(i)]):
            picked.append(int(i))
            if spans is not None:
                taken.setdefault(spans[int(i)][0], []).append(spans[int(i)][1:])
    return picked


def _overlaps(taken: dict[str, list[tuple[float, float]]], span: tuple[str, float, float]) -> bool:
    recording, start, end = span
    return any(start < e and s < end for s, e in taken.get(recording, []))


def random_pick(count: int, n: int, rng: np.random.Generator) -> list[int]:
    """``n`` windows at random: the baseline margin sampling is measured against."""
    return [int(i) for i in rng.permutation(count)[:n]]
