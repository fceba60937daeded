"""From logits to scores and detections, as BirdNET-Analyzer does it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bdisc.errors import ConfigError
from bdisc.model.labels import Label, resolve_species
from bdisc.model.location import location_scores
from bdisc.params import AnalysisParams

# BirdNET-Analyzer 2.x clips shifted logits at 20; 1.x and BirdNET-Pi clip at 15.
SHIFT_CLIP = 20.0
SLOPE_CLIP = 15.0


def flat_sigmoid(logits: np.ndarray, shift: float = 0.0, slope: float = 1.0) -> np.ndarray:
    """BirdNET-Analyzer 2.x's ``1 / (1 + exp(-clip(x + shift, -20, 20)))`` or, with a
    slope other than 1, 1.x's ``1 / (1 + exp(-slope * clip(x, -15, 15)))``."""
    if slope != 1.0:
        clipped = np.clip(logits, -SLOPE_CLIP, SLOPE_CLIP) * slope
    else:
        clipped = np.clip(logits + shift, -SHIFT_CLIP, SHIFT_CLIP)
    return np.asarray(1.0 / (1.0 + np.exp(-clipped)), dtype=np.float32)


@dataclass(frozen=True)
class Detection:
    label: int  # index into the model's labels
    score: float


class Scorer:
    """Turns a batch of logits into scores and per-window detections."""

    def __init__(
        self, params: AnalysisParams, labels: Sequence[Label], model_dir: Path | None = None
    ) -> None:
        self.params = params
        allowed = np.ones(len(labels), dtype=bool)
        if params.species is not None:
            allowed[:] = False
            allowed[list(resolve_species(params.species, labels))] = True
        if params.uses_location:
            assert params.lat is not None and params.lon is not None
            occurrence = location_scores(params.lat, params.lon, params.week, model_dir)
            if occurrence.shape[0] != len(labels):
                raise ConfigError("metadata model and audio model have different label sets")
            allowed &= occurrence >= params.location_threshold
        self.allowed = allowed
        self.filtered = not bool(allowed.all())

    def scores(self, logits: np.ndarray) -> np.ndarray:
        if not self.params.apply_sigmoid:
            return np.asarray(logits, dtype=np.float32)
        return flat_sigmoid(logits, self.params.logit_shift, self.params.sigmoid_slope)

    def detections(self, scores: np.ndarray) -> list[list[Detection]]:
        """Per window: labels passing the filter and min confidence, best first; with
        ``top_n``, the n best labels passing the filter, whatever their score."""
        top_n = self.params.top_n
        keep = self.allowed if top_n else (scores >= self.params.min_conf) & self.allowed
        result: list[list[Detection]] = []
        for row, mask in zip(scores, np.broadcast_to(keep, scores.shape), strict=True):
            idx = np.flatnonzero(mask)
            order = idx[np.argsort(-row[idx], kind="stable")][:top_n]
            result.append([Detection(int(i), float(row[i])) for i in order])
        return result

    def top_k(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the k best allowed labels per window, best first."""
        k = min(self.params.top_k, int(self.allowed.sum()))
        masked = np.where(self.allowed, scores, -np.inf) if self.filtered else scores
        if k == 0:
            empty = np.zeros((scores.shape[0], 0), dtype=np.int64)
            return empty, np.zeros((scores.shape[0], 0), dtype=scores.dtype)
        # argpartition finds the k best in O(n); only those k are then sorted.
        part = np.argpartition(-masked, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(masked, part, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1)
        return idx, np.take_along_axis(scores, idx, axis=1)
