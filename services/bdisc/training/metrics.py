"""Per-class validation report: precision and recall at the default threshold, average
precision (PR-AUC), ROC-AUC, the threshold of best F1 and F1 there, and a confusion
table of true label against top prediction (``Noise`` when no class reaches the
threshold). Written as ``metrics.json``, ``metrics.csv`` and ``confusion.csv``."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.evaluation.metrics import average_precision, pr_curve, roc_auc
from bdisc.fsutil import atomic_write_text
from bdisc.training.dataset import NEGATIVE

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
CONFUSION_CSV = "confusion.csv"
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    positives: int
    negatives: int
    precision: float | None  # at DEFAULT_THRESHOLD; None without any prediction
    recall: float | None  # None without positives
    average_precision: float | None  # PR-AUC; None unless both positives and negatives
    roc_auc: float | None  # None unless both positives and negatives
    best_threshold: float | None  # of best F1; None unless both positives and negatives
    best_f1: float | None
    precision_at_best: float | None
    recall_at_best: float | None


@dataclass(frozen=True)
class Report:
    classes: tuple[ClassMetrics, ...]
    confusion_labels: tuple[str, ...]  # rows: true label, columns: prediction
    confusion: tuple[tuple[int, ...], ...]
    windows: int
    threshold: float = DEFAULT_THRESHOLD

    def macro(self, name: str) -> float | None:
        values = [getattr(c, name) for c in self.classes if getattr(c, name) is not None]
        return float(np.mean(values)) if values else None

    def summary(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "threshold": self.threshold,
            **{
                f"macro_{name}": self.macro(name)
                for name in ("average_precision", "roc_auc", "best_f1", "precision", "recall")
            },
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "classes": [asdict(c) for c in self.classes],
            "confusion": {
                "labels": list(self.confusion_labels),
                "rows_true_columns_predicted": [list(r) for r in self.confusion],
            },
        }


def evaluate(
    scores: np.ndarray,
    targets: np.ndarray,
    classes: Sequence[str],
    true_labels: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
) -> Report:
    """``scores`` and ``targets`` are (N, C); ``true_labels`` each window's label as
    reported (negatives as ``Noise``). A class's ranking metrics (AP, ROC-AUC, best F1)
    need both positives and negatives among the windows: without either they are None
    (a class without negatives would otherwise score a perfect, meaningless 1.0)."""
    per_class = []
    for c, label in enumerate(classes):
        y, s = targets[:, c] > 0, np.asarray(scores[:, c], dtype=np.float64)
        n_pos = int(y.sum())
        n_neg = int(len(y) - n_pos)
        predicted = s >= threshold
        precision = float((y & predicted).sum() / predicted.sum()) if predicted.any() else None
        recall = float((y & predicted).sum() / n_pos) if n_pos else None
        ap = auc = None
        best: tuple[float | None, ...] = (None, None, None, None)
        if n_pos and n_neg:
            ap = float(average_precision(y, s))
            auc = float(roc_auc(y, s))
            p, r, t = pr_curve(y, s)
            f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
            i = int(np.argmax(f1))
            best = (float(t[i]), float(f1[i]), float(p[i]), float(r[i]))
        per_class.append(ClassMetrics(label, n_pos, n_neg, precision, recall, ap, auc, *best))
    names = (*classes, NEGATIVE)
    index = {name: i for i, name in enumerate(names)}
    top = np.argmax(scores, axis=1)
    above = scores[np.arange(len(scores)), top] >= threshold
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    for row, label in enumerate(true_labels):
        if label not in index:
            continue
        column = int(top[row]) if above[row] else index[NEGATIVE]
        matrix[index[label], column] += 1
    return Report(
        tuple(per_class),
        names,
        tuple(tuple(int(v) for v in r) for r in matrix),
        len(true_labels),
        threshold,
    )


def _cell(value: float | int | str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(report: Report, folder: Path) -> list[Path]:
    paths = [folder / METRICS_JSON, folder / METRICS_CSV, folder / CONFUSION_CSV]
    atomic_write_text(paths[0], json.dumps(report.as_dict(), indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = list(ClassMetrics.__dataclass_fields__)
    writer.writerow(columns)
    for c in report.classes:
        writer.writerow([_cell(getattr(c, name)) for name in columns])
    atomic_write_text(paths[1], buf.getvalue())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true \\ predicted", *report.confusion_labels])
    for label, row in zip(report.confusion_labels, report.confusion, strict=True):
        writer.writerow([label, *row])
    atomic_write_text(paths[2], buf.getvalue())
    return paths
