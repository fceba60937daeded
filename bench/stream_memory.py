"""Peak memory of ``bdisc embed`` on one long recording: it must not grow with duration.

Builds 10-minute and 60-minute FLAC files from the soundscape, embeds each in a fresh
process (one worker) and prints the peak resident memory of each and their ratio.

    python bench/stream_memory.py [--minutes 10 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SOUNDSCAPE = ROOT / "tests" / "data" / "audio" / "soundscape.flac"

MEASURE = """
import resource, sys
from bdisc.cli.main import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
sys.exit(code)
"""


def long_recording(path: Path, minutes: int) -> None:
    audio, rate = sf.read(SOUNDSCAPE, dtype="int16")
    repeats = int(np.ceil(minutes * 60 * rate / audio.size))
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(repeats):
            f.write(audio)


def peak_mib(recording: Path, out: Path) -> int:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            "--log-level",
            "warning",
            "embed",
            str(recording),
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs=2, default=[10, 60])
    args = parser.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            rec = Path(tmp) / f"long_{minutes}min.flac"
            long_recording(rec, minutes)
            result[f"peak_rss_mib_{minutes}min"] = peak_mib(rec, Path(tmp) / f"out{minutes}")
            rec.unlink()
    short, long = (result[f"peak_rss_mib_{m}min"] for m in args.minutes)
    result["ratio_long_to_short"] = round(long / short, 3)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
