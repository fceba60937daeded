"""What an evaluation compares and how: inputs, granularity, thresholds, averages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bdisc.errors import ConfigError
from bdisc.evaluation.units import UnitOptions

DEFAULT_THRESHOLDS = tuple(float(t) for t in np.linspace(0.0, 1.0, 20))
DEFAULT_NON_TARGET = ("nan", "na", "unknown*", "unk*")
BEST_BY = ("f1", "f0.5", "f0.25", "f0.1", "precision", "recall", "accuracy")


@dataclass(frozen=True)
class EvalConfig:
    detections: Sequence[Path]
    truth: Sequence[Path]
    out: Path
    granularity: str = "file"
    threshold: float = 0.25
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    species_map: Path | None = None
    units: UnitOptions = field(default_factory=UnitOptions)
    min_truth: int = 1  # species with fewer positive units are left out of macro averages
    non_target: Sequence[str] = DEFAULT_NON_TARGET  # patterns, left out of averages
    best_by: str = "f1"
    plots: bool = True

    def __post_init__(self) -> None:
        if self.best_by not in BEST_BY:
            raise ConfigError(f"--best-by must be one of {', '.join(BEST_BY)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
