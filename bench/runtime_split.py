"""BirdNET V2.4: the whole published model vs bdisc's numpy front-end + LiteRT back.

bdisc runs BirdNET V2.4 split where the two mel spectrograms are concatenated
(``model/concatenate/concat``): the spectrogram front-end in numpy
(``bdisc.model.front_end``), the rest of the network in LiteRT, cut out of the flatbuffer
by ``bdisc.model.birdnet``. This script measures that production path against the whole
model, both through the production class:

* ``BirdNetV24(front_end=False)``: the whole model as published (the baseline);
* ``BirdNetV24()``: numpy front-end + LiteRT back, what bdisc runs.

On the real audio under tests/data/audio (resampled to 48 kHz, 3-s windows, the last one
padded) it prints the max absolute difference of the logits and of the embeddings
between the two. It then times them on the same windows, same batch size and threads,
interleaved batch by batch (A B A B ...), and prints the medians over the repeats of
windows/s (wall and process CPU time, since other work may share the cores) and the
ratio to the whole model. Optionally, the same back-end (the cut flatbuffer, fed the
production FrontEnd's output) in OpenVINO (``pip install openvino``) and ONNX Runtime
(``pip install onnxruntime tf2onnx tensorflow-cpu``) is checked and timed too, where
those packages import; ``--layouts`` adds LiteRT batch sizes 1/8/32 x threads 1/2.

It exits 0 when the production split path is within 1e-4 of the whole model (logits and
embeddings), 1 otherwise; the speed ratio is printed, not asserted.

    python bench/runtime_split.py [--windows 200] [--batch-size 8] [--threads 1]
                                  [--repeats 3] [--model-dir DIR] [--skip-onnx] [--layouts]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One BLAS thread, set before numpy loads: the embed stage runs one process per core.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bdisc.audio.segments import read_segment  # noqa: E402
from bdisc.errors import ConfigError, CorruptAudio  # noqa: E402
from bdisc.model.birdnet import (  # noqa: E402
    MODEL_FILE,
    SAMPLE_RATE,
    WINDOW_S,
    BirdNetV24,
    _prepare,
    _runtime,
    default_model_dir,
)
from bdisc.model.front_end import FrontEnd  # noqa: E402

AUDIO_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "audio"
WINDOW = round(SAMPLE_RATE * WINDOW_S)
TOLERANCE = 1e-4
BASELINE = "whole model (front_end=False)"
SPLIT = "numpy front + LiteRT back (bdisc)"

Outputs = tuple[np.ndarray, np.ndarray]  # (logits (B, 6522), embeddings (B, 1024))
Run = Callable[[np.ndarray], Outputs]


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def production(model_dir: Path, threads: int, front_end: bool) -> Run:
    model = BirdNetV24(model_dir, threads, front_end=front_end)

    def run(x: np.ndarray) -> Outputs:
        result = model.infer(x)
        return result.logits, result.embeddings

    return run


def openvino_back(back: Path, threads: int) -> Callable[[np.ndarray], Outputs]:
    ov: Any = importlib.import_module("openvino")
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1}
    compiled = ov.Core().compile_model(ov.convert_model(str(back)), "CPU", config)
    request = compiled.create_infer_request()
    scores, embedding = compiled.outputs

    def run(spec: np.ndarray) -> Outputs:
        result = request.infer(spec)
        return np.array(result[scores]), np.array(result[embedding])

    return run


def onnx_back(back: Path, threads: int) -> Callable[[np.ndarray], Outputs]:
    ort: Any = importlib.import_module("onnxruntime")
    tf2onnx: Any = importlib.import_module("tf2onnx.convert")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    onnx_path = back.with_suffix(".onnx")
    tf2onnx.from_tflite(str(back), opset=17, output_path=str(onnx_path))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(spec: np.ndarray) -> Outputs:
        logits, embeddings = session.run(None, {name: spec})
        return np.asarray(logits), np.asarray(embeddings)

    return run


def other_backs(model_path: Path, threads: int, skip_onnx: bool, tmp: Path) -> dict[str, Run]:
    """The production cut flatbuffer in OpenVINO and ONNX Runtime, where they import."""
    content, front = _prepare(model_path, _runtime()[1], True)
    assert front is not None
    back = tmp / "back.tflite"
    back.write_bytes(content)
    makers = {"OpenVINO": (openvino_back, "pip install openvino")}
    if not skip_onnx:
        makers["ONNX Runtime"] = (onnx_back, "pip install onnxruntime tf2onnx tensorflow-cpu")
    runs: dict[str, Run] = {}
    for label, (make, hint) in makers.items():
        try:
            back_run = make(back, threads)
        except ImportError as exc:
            out(f"  [skip] {label}: {exc.name} is not installed ({hint})")
            continue
        except Exception as exc:  # a conversion failure is a result, not a crash
            out(f"  [fail] {label}: {type(exc).__name__}: {exc}")
            continue
        runs[f"numpy front + {label} back"] = chained(front, back_run)
        out(f"  {label}: ready")
    return runs


def chained(front: FrontEnd, back: Run) -> Run:
    return lambda x: back(front(x))


def real_windows() -> np.ndarray:
    """Every audio file in tests/data/audio at 48 kHz, in 3-s windows (the last padded)."""
    windows = []
    for path in sorted(AUDIO_DIR.iterdir()):
        if path.suffix.lower() not in {".flac", ".wav", ".mp3"}:
            continue
        try:
            mono, _ = read_segment(path, 0.0, sf.info(str(path)).duration, SAMPLE_RATE)
        except (CorruptAudio, sf.LibsndfileError, RuntimeError):
            continue
        n = max(1, -(-len(mono) // WINDOW))
        windows.append(np.pad(mono, (0, n * WINDOW - len(mono))).reshape(n, WINDOW))
    if not windows:
        sys.exit(f"no readable audio in {AUDIO_DIR}")
    return np.concatenate(windows).astype(np.float32)


def batched(run: Run, x: np.ndarray, batch: int) -> Outputs:
    parts = [run(x[i : i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def max_diffs(ref: Outputs, got: Outputs) -> tuple[float, float]:
    return float(np.abs(ref[0] - got[0]).max()), float(np.abs(ref[1] - got[1]).max())


def interleaved(runs: dict[str, tuple[Run, int]], x: np.ndarray, repeats: int) -> None:
    """Print windows/s of each (run, batch size), interleaved batch by batch, medians of
    the repeats, and their ratios to the first."""
    for run, batch in runs.values():
        run(x[:batch])  # warm-up: allocation, delegate and plugin set-up
    walls: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    longest = max(batch for _, batch in runs.values())
    for _ in range(repeats):
        wall, cpu, count = (
            dict.fromkeys(runs, 0.0),
            dict.fromkeys(runs, 0.0),
            dict.fromkeys(runs, 0),
        )
        for start in range(0, len(x) - longest + 1, longest):
            block = x[start : start + longest]
            for name, (run, batch) in runs.items():
                for i in range(0, longest, batch):
                    t, c = time.perf_counter(), time.process_time()
                    run(block[i : i + batch])
                    cpu[name] += time.process_time() - c
                    wall[name] += time.perf_counter() - t
                    count[name] += batch
        for name in runs:
            walls[name].append(count[name] / wall[name])
            cpus[name].append(count[name] / cpu[name])
    first = next(iter(runs))
    base_wall, base_cpu = statistics.median(walls[first]), statistics.median(cpus[first])
    for name in runs:
        w, c = statistics.median(walls[name]), statistics.median(cpus[name])
        out(
            f"  {name:36s} {w:6.1f} windows/s  x{w / base_wall:4.2f}   "
            f"(CPU time: {c:6.1f} windows/cpu-s x{c / base_cpu:4.2f}; "
            f"repeats {', '.join(f'{v:.1f}' for v in walls[name])})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--windows", type=int, default=200, help="windows timed per repeat")
    parser.add_argument("--batch-size", type=int, default=8, help="bdisc embed's default")
    parser.add_argument("--threads", type=int, default=1, help="per path (bdisc: 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--skip-onnx", action="store_true", help="no tf2onnx conversion")
    parser.add_argument("--layouts", action="store_true", help="LiteRT batch/threads table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    batch, threads = args.batch_size, args.threads

    try:
        model_dir = args.model_dir or default_model_dir()
        runs = {
            BASELINE: production(model_dir, threads, front_end=False),
            SPLIT: production(model_dir, threads, front_end=True),
        }
    except ConfigError as exc:
        sys.exit(str(exc))
    audio = real_windows()
    timed = np.resize(audio, (max(args.windows, batch), WINDOW))
    out(f"model {model_dir / MODEL_FILE}")
    out(f"real audio: {len(audio)} windows from {AUDIO_DIR}; timing {len(timed)} windows")

    with tempfile.TemporaryDirectory() as tmp:
        out("\nOther back-ends (optional):")
        runs |= other_backs(model_dir / MODEL_FILE, threads, args.skip_onnx, Path(tmp))

        out(f"\nMax |diff| to the whole model on real audio (threshold {TOLERANCE:g}):")
        reference = batched(runs[BASELINE], audio, batch)
        equal: dict[str, bool] = {}
        for name, run in list(runs.items())[1:]:
            logits, embeddings = max_diffs(reference, batched(run, audio, batch))
            equal[name] = max(logits, embeddings) <= TOLERANCE
            verdict = "ok" if equal[name] else "FAILS"
            out(f"  {name:36s} logits {logits:.2e}  embeddings {embeddings:.2e}  {verdict}")

        out(f"\nThroughput, batch {batch}, {threads} thread(s), {args.repeats} repeats:")
        interleaved({k: (v, batch) for k, v in runs.items()}, timed, args.repeats)

    if args.layouts:
        out("\nLiteRT layouts (production class, interleaved):")
        layouts = {  # one instance per layout: a batch size change reallocates tensors
            f"{'split' if split else 'whole'} batch {b:2d} threads {t}": (
                production(model_dir, t, split),
                b,
            )
            for split in (False, True)
            for t in (1, 2)
            for b in (1, 8, 32)
        }
        interleaved(layouts, np.resize(timed, (-(-len(timed) // 32) * 32, WINDOW)), args.repeats)

    ok = equal[SPLIT]
    out(f"\nproduction split path within {TOLERANCE:g} of the whole model: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
