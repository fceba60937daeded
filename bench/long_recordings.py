"""Every core on long recordings: ``bdisc embed`` on one 2-hour file and on 8 files of
15 minutes, with long files cut into parts (the default) and without, against the
interpreter bound measured in the same run (one interpreter, one thread, pre-decoded
batches, times the number of cores; as bench/embed_throughput.py).

    python bench/long_recordings.py [--hours 2] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from embed_throughput import SOUNDSCAPE, interpreter_rate  # this folder, run as a script

BDISC = str(Path(sys.executable).parent / "bdisc")


def make_audio(folder: Path, files: int, minutes: float) -> Path:
    folder.mkdir(parents=True)
    audio, rate = sf.read(SOUNDSCAPE, dtype="float32")
    samples = int(minutes * 60 * rate)
    long = np.tile(audio, samples // len(audio) + 1)[:samples]
    for i in range(files):
        sf.write(folder / f"rec{i:02d}.flac", long, rate)
    return folder


def embed(src: Path, out: Path, workers: int, split: bool) -> dict[str, float]:
    env = {**os.environ, "BDISC_SPLIT_LONG": "1" if split else "0"}
    argv = [BDISC, "--log-level", "warning", "embed", str(src), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run([*argv, "--workers", str(workers), "--no-progress"], check=True, env=env)
    wall = time.perf_counter() - start
    summary = json.loads((out / "run_summary.json").read_text())
    return {
        "windows": summary["windows_computed"],
        "windows_per_s": summary["windows_computed"] / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    bound = interpreter_rate(8, windows=96) * cores
    result: dict[str, object] = {"cores": cores, "bound_windows_per_s": round(bound, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            f"1 x {args.hours:g} h": make_audio(Path(tmp) / "one", 1, args.hours * 60),
            "8 x 15 min": make_audio(Path(tmp) / "eight", 8, 15),
        }
        for name, src in cases.items():
            for split in (True, False):
                run = embed(src, Path(tmp) / f"out-{src.name}-{split}", args.workers, split)
                label = f"{name}, {'parts' if split else 'whole files'}"
                result[label] = {
                    "windows": run["windows"],
                    "windows_per_s": round(run["windows_per_s"], 2),
                    "ratio_to_bound": round(run["windows_per_s"] / bound, 3),
                }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
