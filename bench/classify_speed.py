"""``bdisc classify`` on stored embeddings against running BirdNET again on the same audio.

Builds a corpus of copies of bundled recordings (tests/data: the 16 short recordings of
discovery/ and the 2-minute soundscape, 3.6 minutes of audio a copy), trains a head on
3-s clips cut from them (Screaming Piha against the noise beds), embeds the corpus once,
then times, each as the command a user runs (start-up included):

- ``bdisc analyze CORPUS``: BirdNET on the audio (what classifying without stored
  embeddings costs);
- ``bdisc classify --model MODEL EMBEDDINGS``: the trained head on the stored embeddings.

    python bench/classify_speed.py [--copies 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "discovery"
SOUNDSCAPE = ROOT / "tests" / "data" / "audio" / "soundscape.flac"
BDISC = [str(Path(sys.executable).parent / "bdisc")]


def _run(args: list[str]) -> float:
    started = time.monotonic()
    subprocess.run([*BDISC, *args, "--no-progress"], check=True, capture_output=True)
    return time.monotonic() - started


def _clips(trainset: Path) -> None:
    """3-s clips: Screaming Piha from its labelled calls, Noise from the noise beds."""
    for label, folder in (("Screaming Piha", "piha_site"), ("Noise", "noise")):
        (trainset / label).mkdir(parents=True)
        for src in sorted((DATA / folder).iterdir()):
            if src.suffix not in (".mp3", ".flac", ".wav"):
                continue
            audio, rate = sf.read(src, dtype="float32", always_2d=True)
            for k in range(min(6, len(audio) // (3 * rate))):
                clip = audio[k * 3 * rate : (k + 1) * 3 * rate]
                sf.write(trainset / label / f"{src.stem}_{k}.wav", clip, rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        corpus = base / "corpus"
        for k in range(args.copies):
            shutil.copytree(DATA, corpus / f"copy{k}", ignore=shutil.ignore_patterns("*.csv"))
            shutil.copyfile(SOUNDSCAPE, corpus / f"copy{k}" / SOUNDSCAPE.name)
        _clips(base / "trainset")
        workers = ["--workers", str(args.workers)]
        model = base / "model"
        _run(["train", str(base / "trainset"), "--out", str(model), "--no-export"])
        stored = base / "stored"
        embed_s = _run(["embed", str(corpus), "--out", str(stored), *workers])
        analyze_s = _run(["analyze", str(corpus), "--out", str(base / "analyzed"), *workers])
        classify_s = _run(
            ["classify", "--model", str(model), str(stored), "--out", str(base / "classified")]
        )
        recordings = sum(1 for _ in (stored / "embeddings").rglob("*.parquet"))
        sys.stdout.write(
            f"corpus: {args.copies} copies of 3.6 minutes of audio ({recordings} recordings)\n"
            f"bdisc embed     {embed_s:7.1f} s\n"
            f"bdisc analyze   {analyze_s:7.1f} s (BirdNET on the audio)\n"
            f"bdisc classify  {classify_s:7.1f} s (the head on stored embeddings)\n"
            f"classify is {analyze_s / classify_s:.1f}x faster than analyzing again\n"
        )


if __name__ == "__main__":
    main()
