"""Windows/s of the full ``bdisc embed`` path against the raw TFLite interpreter bound.

The bound is measured in the same run: one interpreter, one thread, batches of
pre-decoded windows (no I/O, no decoding, no writing), times the number of cores.
The full path is the real command on N copies of the soundscape: decoding, resampling
check, windowing, inference in worker processes, Parquet writing, hashing, reports,
process start-up and model loading included.

    python bench/embed_throughput.py [--copies 120] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bdisc.model.birdnet import BirdNetV24

ROOT = Path(__file__).resolve().parents[1]
SOUNDSCAPE = ROOT / "tests" / "data" / "audio" / "soundscape.flac"


def interpreter_rate(batch_size: int, windows: int) -> float:
    model = BirdNetV24(threads=1)
    audio, _ = sf.read(SOUNDSCAPE, dtype="float32")
    batch = np.stack([audio[i * 144_000 : (i + 1) * 144_000] for i in range(batch_size)])
    model.infer(batch)  # warm-up: allocation and delegate set-up
    start = time.perf_counter()
    for _ in range(windows // batch_size):
        model.infer(batch)
    return (windows // batch_size) * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    single = interpreter_rate(args.batch_size, windows=96)
    bound = single * cores

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for i in range(args.copies):
            shutil.copyfile(SOUNDSCAPE, src / f"copy{i:03d}.flac")
        bdisc = str(Path(sys.executable).parent / "bdisc")
        start = time.perf_counter()
        subprocess.run(
            [
                bdisc,
                "--log-level",
                "warning",
                "embed",
                str(src),
                "--out",
                str(out),
                "--workers",
                str(args.workers),
                "--batch-size",
                str(args.batch_size),
                "--no-progress",
            ],
            check=True,
        )
        wall = time.perf_counter() - start
        summary = json.loads((out / "run_summary.json").read_text())

    windows = summary["windows_computed"]
    result = {
        "cores": cores,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "windows": windows,
        "interpreter_1_thread_windows_per_s": round(single, 2),
        "bound_windows_per_s": round(bound, 2),
        "embed_command_windows_per_s": round(windows / wall, 2),
        "embed_run_windows_per_s": summary["windows_per_s"],
        "ratio_command_to_bound": round(windows / wall / bound, 3),
        "ratio_run_to_bound": round(summary["windows_per_s"] / bound, 3),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
