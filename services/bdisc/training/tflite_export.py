"""The head as a BirdNET-Analyzer custom classifier: ``CustomClassifier.tflite`` (3 s of
48-kHz audio in, the classes' logits out), ``CustomClassifier_Labels.txt`` and
``CustomClassifier_Params.csv``, as BirdNET-Analyzer 2.4's ``save_linear_classifier``
writes them. Its analyzer and the ``birdnet`` package (``load_custom``) load them.

There is no TensorFlow SavedModel of BirdNET here to convert, so the file is BirdNET's
own FP32 TFLite model edited: its graph ends in one FULLY_CONNECTED layer from the
1024-d embedding (``GLOBAL_AVG_POOL``) to the 6,522 logits. A linear head replaces that
layer's weights, bias and output shape; an mlp head turns it into the hidden layer
(ReLU fused) and appends a second FULLY_CONNECTED to the logits. The output stays
logits, without a sigmoid, as BirdNET-Analyzer's export (it pops the activation layer):
the analyzer and ``birdnet`` apply their own sigmoid with the user's sensitivity.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.errors import ConfigError
from bdisc.fsutil import atomic_write_text, commit, temp_path
from bdisc.model.birdnet import EMBEDDING_DIM, MODEL_FILE, _runtime, default_model_dir
from bdisc.model.classifier_head import last_dense
from bdisc.training.head import Head

CLASSIFIER_NAME = "CustomClassifier"
TFLITE_FILE = f"{CLASSIFIER_NAME}.tflite"
LABELS_FILE = f"{CLASSIFIER_NAME}_Labels.txt"
PARAMS_FILE = f"{CLASSIFIER_NAME}_Params.csv"
EXPORT_FILES = (TFLITE_FILE, LABELS_FILE, PARAMS_FILE)
RELU = 1  # TFLite ActivationFunctionType
FLOAT32 = 0  # TFLite TensorType
# BirdNET-Analyzer 2.4's save_model_params columns (spelling theirs).
PARAMS_HEADER = (
    "Hidden units",
    "Dropout",
    "Batchsize",
    "Learning rate",
    "Crop mode",
    "Crop overlap",
    "Audio speed",
    "Upsamling mode",
    "Upsamling ratio",
    "use mixup",
    "use label smoothing",
    "use focal loss",
    "focal loss alpha",
    "focal loss gamma",
    "BirdNET Model version",
)


def _float_buffer(schema: Any, array: np.ndarray) -> Any:
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(array, dtype="<f4").tobytes(), np.uint8)
    return buffer


def classifier_tflite(head: Head, model_dir: Path | None = None) -> bytes:
    """BirdNET's model file with ``head`` in place of its classification layer."""
    import flatbuffers

    path = (model_dir or default_model_dir()) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"BirdNET model file missing: {path}", path=str(path))
    if head.input_dim != EMBEDDING_DIM:
        raise ConfigError(f"the head takes {head.input_dim}-d input, BirdNET gives {EMBEDDING_DIM}")
    _, utils = _runtime()
    schema = utils.schema_fb
    model = utils.read_model(str(path))
    graph = model.subgraphs[0]
    out = int(graph.outputs[0])
    dense = last_dense(model)
    if dense is None:
        raise ConfigError(f"{path.name} does not end in a dense layer from the embedding")
    if dense.builtinOptions.fusedActivationFunction != 0:
        raise ConfigError(f"{path.name}: its last layer has an activation; expected logits")
    _, w_index, b_index = (int(i) for i in dense.inputs)
    for index in (w_index, b_index):
        tensor = graph.tensors[index]
        if tensor.type != FLOAT32 or _quantised(tensor):
            raise ConfigError(
                f"{path.name}: its last layer's {tensor.name.decode(errors='replace')} is not "
                "plain float32 (quantised model?); export needs BirdNET's FP32 model"
            )
    old_buffers = {graph.tensors[w_index].buffer, graph.tensors[b_index].buffer}

    def add_buffer(array: np.ndarray) -> int:
        model.buffers.append(_float_buffer(schema, array))
        return len(model.buffers) - 1

    def add_tensor(like: int, name: str, shape: list[int], buffer: int) -> int:
        tensor = copy.deepcopy(graph.tensors[like])
        tensor.name = name.encode()
        tensor.buffer = buffer
        graph.tensors.append(tensor)
        set_shape(len(graph.tensors) - 1, shape)
        return len(graph.tensors) - 1

    def set_shape(index: int, shape: list[int]) -> None:
        """The new shape; a dynamic (-1) dimension of the signature stays dynamic, and a
        tensor without a signature (constant weights) gets none."""
        tensor = graph.tensors[index]
        tensor.shape = np.asarray(shape, dtype=np.int32)
        signature = tensor.shapeSignature
        if signature is not None and len(signature):
            tensor.shapeSignature = np.asarray(
                [
                    -1 if i < len(signature) and signature[i] == -1 else n
                    for i, n in enumerate(shape)
                ],
                dtype=np.int32,
            )

    first = head.layers[0]
    graph.tensors[w_index].buffer = add_buffer(first.weights)
    graph.tensors[b_index].buffer = add_buffer(first.bias)
    set_shape(w_index, list(first.weights.shape))
    set_shape(b_index, list(first.bias.shape))
    batch = int(graph.tensors[out].shape[0])
    if head.kind == "linear":
        set_shape(out, [batch, head.n_classes])
    else:
        last = head.layers[1]
        hidden = add_tensor(out, "bdisc/HIDDEN_DENSE/Relu", [batch, head.hidden], 0)
        dense.outputs = np.asarray([hidden], dtype=np.int32)
        dense.builtinOptions.fusedActivationFunction = RELU
        w2 = add_tensor(w_index, "bdisc/CLASS_DENSE/MatMul", list(last.weights.shape), 0)
        b2 = add_tensor(b_index, "bdisc/CLASS_DENSE/BiasAdd", list(last.bias.shape), 0)
        graph.tensors[w2].buffer = add_buffer(last.weights)
        graph.tensors[b2].buffer = add_buffer(last.bias)
        second = copy.deepcopy(dense)
        second.inputs = np.asarray([hidden, w2, b2], dtype=np.int32)
        second.outputs = np.asarray([out], dtype=np.int32)
        second.builtinOptions.fusedActivationFunction = 0
        graph.operators.append(second)
        set_shape(out, [batch, head.n_classes])
    still_used = {t.buffer for t in graph.tensors}
    for index in old_buffers - still_used:
        model.buffers[index].data = None  # BirdNET's 6,522-class weights: not shipped twice
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _quantised(tensor: Any) -> bool:
    q = tensor.quantization
    if q is None:
        return False
    return any(v is not None and len(v) for v in (q.scale, q.zeroPoint, q.min, q.max)) or bool(
        q.detailsType
    )


def params_row(
    head: Head,
    batch_size: int,
    learning_rate: float,
    overlap_s: float,
    audio_speed: float,
    upsampling_ratio: float,
) -> list[str]:
    """The values of BirdNET-Analyzer's _Params.csv for a head trained by bdisc (every
    window of a clip is used: its ``segments`` crop mode; no dropout, mixup, label
    smoothing or focal loss)."""
    values: Sequence[object] = (
        head.hidden,
        0.0,
        batch_size,
        learning_rate,
        "segments",
        overlap_s,
        audio_speed,
        "repeat",
        upsampling_ratio,
        False,
        False,
        False,
        0.25,
        2.0,
        "V2.4",
    )
    return [str(v) for v in values]


def export_classifier(
    head: Head,
    classes: Sequence[str],
    folder: Path,
    params: Sequence[str],
    model_dir: Path | None = None,
) -> list[Path]:
    """Write the three files into ``folder``."""
    if len(classes) != head.n_classes:
        raise ValueError("the head's outputs and the classes differ in number")
    folder.mkdir(parents=True, exist_ok=True)
    tflite = folder / TFLITE_FILE
    tmp = temp_path(tflite)
    tmp.write_bytes(classifier_tflite(head, model_dir))
    commit(tmp, tflite)
    labels = folder / LABELS_FILE
    atomic_write_text(labels, "".join(f"{c}\n" for c in classes))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([PARAMS_HEADER, list(params)])
    params_path = folder / PARAMS_FILE
    atomic_write_text(params_path, buf.getvalue())
    return [tflite, labels, params_path]


def run_classifier(path: Path, audio: np.ndarray, threads: int = 1) -> np.ndarray:
    """The classifier file's output for (B, 144000) windows, with bdisc's TFLite runtime."""
    interpreter_cls, _ = _runtime()
    interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    batch = np.ascontiguousarray(audio, dtype=np.float32)
    interpreter.resize_tensor_input(index, list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
