"""BirdNET V2.4's last layer, read out of the model file: scores from stored embeddings.

The model ends in one dense layer from the 1024-d embedding (global average pool) to
the 6,522 logits, so ``logits = embedding @ W.T + b`` exactly. With it, embeddings made
elsewhere (BirdNET-Analyzer's database) get BirdNET's top labels without the audio being
read again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.errors import ConfigError
from bdisc.model.birdnet import EMBEDDING_DIM, MODEL_FILE, _runtime, default_model_dir

FULLY_CONNECTED = 9  # TFLite builtin operator code


@dataclass(frozen=True)
class ClassifierHead:
    weights: np.ndarray  # float32 (n_classes, dim)
    bias: np.ndarray  # float32 (n_classes,)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float32)
        return np.asarray(x @ self.weights.T + self.bias, dtype=np.float32)


def last_dense(model: Any) -> Any | None:
    """The operator of a TFLite model (``ModelT``) that makes its output from the
    embedding: one FULLY_CONNECTED with 1024-d input. None if the model does not end so."""
    graph = model.subgraphs[0]
    out = int(graph.outputs[0])
    op = next((op for op in graph.operators if out in list(op.outputs)), None)
    if op is None or model.operatorCodes[op.opcodeIndex].builtinCode != FULLY_CONNECTED:
        return None
    x, w, _ = (int(i) for i in op.inputs)
    if list(graph.tensors[w].shape)[1:] != [EMBEDDING_DIM]:
        return None
    if list(graph.tensors[x].shape)[-1:] != [EMBEDDING_DIM]:
        return None
    return op


@functools.cache
def classifier_head(model_dir: Path | None = None) -> ClassifierHead:
    path = (model_dir or default_model_dir()) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"BirdNET model file missing: {path}")
    _, utils = _runtime()
    model = utils.read_model(str(path))
    op = last_dense(model)
    if op is None:
        raise ConfigError(f"{path.name} does not end in a dense layer from the embedding")
    graph = model.subgraphs[0]
    _, w, b = (int(i) for i in op.inputs)
    wt, bt = graph.tensors[w], graph.tensors[b]
    weights = np.frombuffer(bytes(model.buffers[wt.buffer].data), dtype="<f4")
    bias = np.frombuffer(bytes(model.buffers[bt.buffer].data), dtype="<f4")
    return ClassifierHead(weights.reshape(list(wt.shape)).copy(), bias.copy())
