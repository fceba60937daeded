"""How well does discovery separate sounds? A labelled mixture deployment, then discover.

Real calls are placed into real background noise at known times: each call sits inside
one 3-s window slot, so every window has exactly one truth (a species, or background).
The manifest (manifest.csv beside the mixture) records file, slot, species and source.
Printed: per species the purity and recall of its best cluster, the share of species
that own a cluster of purity >= 0.8 ("discovered"), and how many clusters a reviewer
must look at.

    python bench/discovery_quality.py [--files 8] [--seed 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bdisc.discovery.api import DiscoverConfig, discover
from bdisc.discovery.sheets import read_clusters

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
RATE = 48_000
SLOT = 3.0


def load(path: Path, start: float = 0.0, stop: float | None = None) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    audio = audio[int(start * rate) : None if stop is None else int(stop * rate)]
    return np.asarray(soxr.resample(audio, rate, RATE), dtype=np.float32)


def call_library() -> dict[str, list[np.ndarray]]:
    """Call snippets per species, cut from labelled real recordings."""
    calls: dict[str, list[np.ndarray]] = defaultdict(list)
    piha = DATA / "discovery" / "piha_site"
    with (DATA / "discovery" / "ScreamingPiha_Manual_Labels.csv").open() as f:
        for row in csv.DictReader(f):
            src = piha / row["IN FILE"].replace(".wav", ".mp3")
            if src.is_file() and float(row["DURATION"]) <= 2.8:
                calls["Screaming Piha"].append(
                    load(src, float(row["OFFSET"]), float(row["OFFSET"]) + float(row["DURATION"]))
                )
    hermits = DATA / "discovery" / "hermit_site"
    for src in sorted(hermits.glob("Phae.long*.wav")) + sorted(hermits.glob("lbh*.wav")):
        audio = load(src)
        calls["Long-billed Hermit"] += [
            audio[i : i + int(2.5 * RATE)]
            for i in range(0, max(1, audio.size - RATE), int(2.5 * RATE))
        ]
    cuvi = load(hermits / "Phae.cuvi.wav")
    calls["Scaly-breasted Hummingbird"] = [
        cuvi[i : i + int(2.5 * RATE)]
        for i in range(0, cuvi.size - int(2.5 * RATE), int(2.5 * RATE))
    ]
    magpie = load(DATA / "audio" / "pica_pica_30s.flac")
    calls["Eurasian Magpie"] = [magpie[int(s * RATE) : int((s + 2.8) * RATE)] for s in (3, 12, 21)]
    return {k: [c for c in v if c.size > RATE // 10] for k, v in calls.items()}


def backgrounds() -> list[np.ndarray]:
    return [load(p) for p in sorted((DATA / "discovery" / "noise").glob("*.flac"))]


def build(folder: Path, n_files: int, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    calls, beds = call_library(), backgrounds()
    species = sorted(calls)
    manifest = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        bed = beds[i % len(beds)]
        slots = 20
        length = int(slots * SLOT * RATE)
        audio = np.resize(bed, length) * (0.05 / (np.abs(bed).max() + 1e-9))
        name = f"MIX{i:02d}_20230601_{5 + i % 4:02d}0000.wav"
        for slot in range(slots):
            if rng.random() < 0.3:
                truth, source = "background", "-"
            else:
                truth = species[int(rng.integers(len(species)))]
                pool = calls[truth]
                k = int(rng.integers(len(pool)))
                call = pool[k][: int(2.8 * RATE)]
                call = call * (0.4 / (np.abs(call).max() + 1e-9))
                offset = int(slot * SLOT * RATE + rng.integers(0, int(SLOT * RATE) - call.size + 1))
                audio[offset : offset + call.size] += call
                source = f"{truth}#{k}"
            manifest.append(
                {"file": name, "start_s": f"{slot * SLOT:g}", "truth": truth, "source": source}
            )
        sf.write(folder / name, np.clip(audio, -1, 1), RATE, subtype="PCM_16")
    with (folder.parent / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "start_s", "truth", "source"])
        writer.writeheader()
        writer.writerows(manifest)
    return manifest


def score(manifest: list[dict[str, str]], out: Path) -> dict[str, object]:
    truth = {(m["file"], float(m["start_s"])): m["truth"] for m in manifest}
    rows = read_clusters(out / "mix" / "clusters.csv")
    by_cluster: dict[int, Counter[str]] = defaultdict(Counter)
    by_truth: dict[str, Counter[int]] = defaultdict(Counter)
    for r in rows:
        t = truth[(r.file, r.start_s)]
        by_cluster[r.cluster][t] += 1
        by_truth[t][r.cluster] += 1
    per_species = {}
    for name in sorted(t for t in by_truth if t != "background"):
        owned = [k for k, c in by_cluster.items() if k >= 0 and c.most_common(1)[0][0] == name]
        best = max(owned, key=lambda k: by_cluster[k][name], default=None)
        purity = (
            by_cluster[best][name] / sum(by_cluster[best].values()) if best is not None else 0.0
        )
        recall = by_truth[name][best] / sum(by_truth[name].values()) if best is not None else 0.0
        per_species[name] = {
            "windows": sum(by_truth[name].values()),
            "cluster": best,
            "purity": round(purity, 3),
            "recall": round(recall, 3),
        }
    discovered = sum(v["purity"] >= 0.8 for v in per_species.values())  # type: ignore[operator]
    return {
        "species": per_species,
        "discovered_share": round(discovered / max(1, len(per_species)), 3),
        "clusters_to_review": sum(1 for k in by_cluster if k >= 0),
        "noise_windows": sum(by_cluster[-1].values()) if -1 in by_cluster else 0,
        "windows": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the mixture and results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        manifest = build(base / "recordings" / "mix", args.files, args.seed)
        out = base / "results"
        discover(
            DiscoverConfig(
                base / "recordings",
                out,
                progress=False,
                workers=2,
                audio_per_cluster=0,
                montage_cap=12,
            )
        )
        sys.stdout.write(json.dumps(score(manifest, out), indent=2) + "\n")


if __name__ == "__main__":
    main()
