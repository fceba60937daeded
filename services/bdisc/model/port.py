"""The interface every acoustic model adapter implements (BirdNET today, others later)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from bdisc.model.labels import Label


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of a model: recorded on every artifact made with it."""

    name: str  # e.g. "BirdNET_GLOBAL_6K_V2.4"
    version: str  # e.g. "2.4"
    precision: str  # "FP32"
    sha256: str  # of the model file: two files with one name still differ here
    sample_rate: int
    window_s: float
    embedding_dim: int
    n_classes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Inference:
    """Outputs for a batch of B windows."""

    logits: np.ndarray  # float32 (B, n_classes)
    embeddings: np.ndarray  # float32 (B, embedding_dim)


class AcousticModel(Protocol):
    @property
    def info(self) -> ModelInfo: ...

    @property
    def labels(self) -> Sequence[Label]: ...

    def infer(self, batch: np.ndarray) -> Inference:
        """Run a float32 batch of shape (B, sample_rate * window_s)."""
        ...
