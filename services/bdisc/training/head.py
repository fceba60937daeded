"""A classification head on BirdNET embeddings: dense layers in numpy.

``linear``: one dense layer from the embedding to the class logits. ``mlp``: a hidden
dense layer with ReLU, then the dense layer to the logits. Weights are stored as the
TFLite FULLY_CONNECTED op stores them, (outputs, inputs), so the export copies them as
they are. Scores are independent sigmoids (multi-label), as BirdNET's.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bdisc.errors import ConfigError, IncompatibleArtifact

HeadKind = Literal["linear", "mlp"]
HEAD_KINDS: tuple[HeadKind, ...] = ("linear", "mlp")


@dataclass(frozen=True)
class Dense:
    weights: np.ndarray  # float32 (outputs, inputs)
    bias: np.ndarray  # float32 (outputs,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x @ self.weights.T + self.bias, dtype=np.float32)


@dataclass(frozen=True)
class Head:
    kind: HeadKind
    layers: tuple[Dense, ...]  # ReLU between layers, none after the last

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ConfigError(f"unknown head {self.kind!r}; choose linear or mlp")
        if len(self.layers) != (1 if self.kind == "linear" else 2):
            raise ConfigError(f"a {self.kind} head has the wrong number of layers")
        inputs = None
        for i, layer in enumerate(self.layers):
            w, b = layer.weights, layer.bias
            if w.ndim != 2 or b.ndim != 1 or b.shape[0] != w.shape[0] or 0 in w.shape:
                raise ConfigError(
                    f"layer {i} of the head: weights {w.shape} and bias {b.shape} do not fit"
                )
            if inputs is not None and w.shape[1] != inputs:
                raise ConfigError(
                    f"layer {i} of the head takes {w.shape[1]} inputs; the layer before "
                    f"gives {inputs}"
                )
            inputs = w.shape[0]

    @property
    def input_dim(self) -> int:
        return int(self.layers[0].weights.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.layers[-1].weights.shape[0])

    @property
    def hidden(self) -> int:
        return 0 if self.kind == "linear" else int(self.layers[0].weights.shape[0])

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ConfigError(f"embeddings of shape {x.shape}; this head takes {self.input_dim}")
        for layer in self.layers[:-1]:
            x = np.maximum(layer(x), 0.0)
        return self.layers[-1](x)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(embeddings))

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {"kind": np.asarray(self.kind)}
        for i, layer in enumerate(self.layers):
            arrays[f"layer{i}_weights"] = layer.weights
            arrays[f"layer{i}_bias"] = layer.bias
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Head:
        """The head of ``path``; IncompatibleArtifact if it is not one (unreadable, not
        a head's arrays, or layers whose shapes do not fit)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                kind = str(data["kind"])
                layers = []
                i = 0
                while f"layer{i}_weights" in data:
                    layers.append(
                        Dense(
                            np.asarray(data[f"layer{i}_weights"], dtype=np.float32),
                            np.asarray(data[f"layer{i}_bias"], dtype=np.float32),
                        )
                    )
                    i += 1
            for known in HEAD_KINDS:
                if kind == known:
                    return cls(known, tuple(layers))
            raise ConfigError(f"unknown head {kind!r}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, ConfigError) as exc:
            message = (
                exc.message if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            )
            raise IncompatibleArtifact(
                f"{path} is not a readable head ({message})", path=str(path)
            ) from exc


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic."""
    z = np.asarray(x, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out.astype(np.float32)
