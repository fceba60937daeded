"""A trained model's decision threshold per class: the threshold of best F1 on its
validation windows, where validation could measure one, else 0.5; kept within 0.1 to 0.9.
A validation set the head separates perfectly puts the best-F1 threshold at its lowest
positive score (0.99998, say): a cut that says where the positives were, not where the
boundary is.

model.json keeps the validation summary; the per-class values are in the model folder's
metrics.json, trusted only when its summary is the one model.json records (the same
training wrote both).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from bdisc.logs import fields
from bdisc.training.metrics import DEFAULT_THRESHOLD, METRICS_JSON
from bdisc.training.model_file import TrainedModel

log = logging.getLogger(__name__)

LIMITS = (0.1, 0.9)  # a decision threshold is kept within these


def _per_class(model: TrainedModel) -> list[dict[str, Any]]:
    recorded = model.meta.get("metrics") or {}
    if isinstance(recorded.get("classes"), list):
        return list(recorded["classes"])
    path = None if model.folder is None else model.folder / METRICS_JSON
    if path is None or not path.is_file():
        return []
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(report, dict) or not isinstance(report.get("classes"), list):
        return []
    if any(report.get(k) != v for k, v in recorded.items()):
        log.warning(
            f"{path} is not the report of this model's training: thresholds 0.5",
            extra=fields(path=str(path)),
        )
        return []
    return list(report["classes"])


def class_thresholds(model: TrainedModel) -> np.ndarray:
    """float64 (C,), in the order of ``model.classes``."""
    found: dict[str, float] = {}
    for entry in _per_class(model):
        value = entry.get("best_threshold") if isinstance(entry, dict) else None
        if isinstance(value, int | float) and 0.0 < float(value) < 1.0:
            found[str(entry.get("label"))] = float(value)
    values = [found.get(c, DEFAULT_THRESHOLD) for c in model.classes]
    return np.clip(np.asarray(values, dtype=np.float64), *LIMITS)
