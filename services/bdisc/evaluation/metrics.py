"""Classification metrics from truth and scores, written out so every number is checkable.

A unit is predicted positive when its score is at least the threshold; units with no
detection have score -inf and are never predicted. ROC-AUC is the rank statistic (ties
count half); average precision is the step-wise area (as scikit-learn computes it);
PR-AUC is the trapezoid under the precision-recall points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BETAS = (1.0, 0.5, 0.25, 0.1)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int | None  # None where negatives are not countable (per-sound evaluation)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> float:
        return math.nan if self.tn is None else _ratio(self.fp, self.fp + self.tn)

    @property
    def accuracy(self) -> float:
        if self.tn is None:
            return math.nan
        return _ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn)

    def f_beta(self, beta: float) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r) or p + r == 0:
            return math.nan if (math.isnan(p) or math.isnan(r)) else 0.0
        b2 = beta * beta
        return (1 + b2) * p * r / (b2 * p + r)

    def __add__(self, other: Confusion) -> Confusion:
        tn = None if self.tn is None or other.tn is None else self.tn + other.tn
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, tn)


def confusion(truth: np.ndarray, score: np.ndarray, threshold: float) -> Confusion:
    pred = score >= threshold
    t = truth.astype(bool)
    return Confusion(
        int((pred & t).sum()),
        int((pred & ~t).sum()),
        int((~pred & t).sum()),
        int((~pred & ~t).sum()),
    )


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    t = truth.astype(bool)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if not n_pos or not n_neg:
        return math.nan
    finite = np.where(
        np.isfinite(score), score, np.nanmin(score[np.isfinite(score)], initial=0) - 1
    )
    order = np.argsort(finite, kind="mergesort")
    ranks = np.empty(len(finite))
    sorted_scores = finite[order]
    i = 0
    while i < len(sorted_scores):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _pr_points(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct finite score, highest threshold first."""
    precision, recall, _ = pr_curve(truth, score)
    return precision, recall


def pr_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) at every distinct finite score, highest threshold
    first: predicting ``score >= threshold[i]`` gives ``precision[i]`` and ``recall[i]``."""
    t = truth.astype(bool)
    keep = np.isfinite(score)
    s, tt = score[keep], t[keep]
    order = np.argsort(-s, kind="mergesort")
    s, tt = s[order], tt[order]
    tps = np.cumsum(tt)
    fps = np.cumsum(~tt)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.array([], int)
    precision = tps[last] / (tps[last] + fps[last])
    recall = tps[last] / max(1, int(t.sum()))
    return precision, recall, s[last]


def average_precision(truth: np.ndarray, score: np.ndarray) -> float:
    if not truth.astype(bool).any():
        return math.nan
    precision, recall = _pr_points(truth, score)
    if not len(recall):
        return 0.0
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pr_auc(truth: np.ndarray, score: np.ndarray) -> float:
    if not truth.astype(bool).any():
        return math.nan
    precision, recall = _pr_points(truth, score)
    if not len(recall):
        return 0.0
    # Start the curve at recall 0 with the first precision (the usual convention).
    return float(np.trapezoid(np.r_[precision[0], precision], np.r_[0.0, recall]))


def sweep_auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Trapezoid area under ROC points from a threshold sweep, closed at (0,0) and (1,1).
    This is how an AUC is read off a 20-threshold table such as the paper's."""
    keep = ~(np.isnan(fpr) | np.isnan(tpr))
    if not keep.any():
        return math.nan
    x = np.r_[0.0, fpr[keep], 1.0]
    y = np.r_[0.0, tpr[keep], 1.0]
    order = np.lexsort((y, x))
    return float(np.trapezoid(y[order], x[order]))
