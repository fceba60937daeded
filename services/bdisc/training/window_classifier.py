"""A trained head as discovery's ``WindowClassifier``: ``bdisc discover --classifier
MODEL_DIR --keep-classes A,B`` clusters only the windows the head puts in those classes.

A window's class is the best-scoring class whose score reaches its threshold (the
best-F1 threshold of the head's validation, else 0.5); a window no class reaches is
``Noise``, which --keep-classes may name too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bdisc.errors import ConfigError, IncompatibleArtifact
from bdisc.params import AnalysisParams
from bdisc.training.classify import DEFAULTS
from bdisc.training.dataset import NEGATIVE, is_negative
from bdisc.training.model_file import TrainedModel
from bdisc.training.thresholds import class_thresholds


class HeadClassifier:
    """``top_class(embeddings)``: each window's class under the head, or ``Noise``."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model
        self.thresholds = class_thresholds(model)

    @property
    def classes(self) -> tuple[str, ...]:
        return (*self.model.classes, NEGATIVE)

    def check_classes(self, keep: Sequence[str]) -> tuple[str, ...]:
        """``keep`` as the head names its classes (any negative name is ``Noise``);
        ConfigError for a class the head does not have."""
        named = {c.casefold(): c for c in self.model.classes}
        out = []
        for name in keep:
            if is_negative(name):
                out.append(NEGATIVE)
            elif name.strip().casefold() in named:
                out.append(named[name.strip().casefold()])
            else:
                raise ConfigError(
                    f"the classifier has no class {name!r}; its classes: " + ", ".join(self.classes)
                )
        return tuple(out)

    def check_params(self, params: AnalysisParams) -> None:
        """Refuse to classify audio prepared otherwise (band-pass, speed) than the
        head's training embeddings: the scores would not mean what they meant there."""
        trained = self.model.meta.get("embedding") or {}
        wanted = {
            "bandpass_fmin": params.bandpass.fmin,
            "bandpass_fmax": params.bandpass.fmax,
            "audio_speed": params.audio_speed,
        }
        differs = {
            k: (v, float(trained.get(k, DEFAULTS.get(k, v))))
            for k, v in wanted.items()
            if float(trained.get(k, DEFAULTS.get(k, v))) != float(v)
        }
        if differs:
            detail = ", ".join(f"{k} {v} (trained on {t})" for k, (v, t) in differs.items())
            raise IncompatibleArtifact(
                f"the classifier was trained on audio prepared otherwise: {detail}",
                path=str(self.model.folder),
            )

    def top_class(self, embeddings: np.ndarray) -> list[str]:
        x = np.asarray(embeddings, dtype=np.float32)
        if x.shape[0] == 0:
            return []
        scores = self.model.head.scores(x).astype(np.float64)
        passing = np.where(scores >= self.thresholds, scores, -np.inf)
        best = np.argmax(passing, axis=1)
        reached = np.isfinite(passing[np.arange(len(best)), best])
        return [
            self.model.classes[b] if ok else NEGATIVE for b, ok in zip(best, reached, strict=True)
        ]
