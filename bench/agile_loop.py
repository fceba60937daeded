"""Agile modelling on real labelled calls: a head trained on BirdNET embeddings against
base BirdNET's own score of the species, then active learning (margin sampling, as
``bdisc suggest`` picks) against random labelling.

Data (../shared/data): the 11 Screaming Piha recordings of pyha/ with their 254
hand-labelled calls (ScreamingPiha_Manual_Labels.csv), as positives where a call
overlaps a 3-s window by at least min(1 s, half the call); pyha/xc/ (8 clips of 7 other
species) and noise/ as negatives. Windows overlap by 1.5 s, as discover's.

The recordings are split (never windows of one recording on both sides): the held-out
ones are scored per window with bdisc's evaluation metrics (PR-AUC as ``bdisc evaluate``
computes it, trapezoid; average precision, step-wise; ROC-AUC), for the head trained on
every training window and for BirdNET V2.4's logit of 'Lipaugus vociferans_Screaming
Piha' on the same stored embeddings. Then the curve: from a few labels, rounds of N
windows chosen by margin sampling or at random, the head retrained each round, PR-AUC
on the held-out windows per round, mean and spread over several seeds.

    python bench/agile_loop.py [--rounds 6] [--per-round 10] [--seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.evaluation import metrics as m
from bdisc.model.birdnet import LABELS_FILE, default_model_dir
from bdisc.model.classifier_head import classifier_head
from bdisc.model.labels import read_labels
from bdisc.outputs.embeddings import embedding_matrix, file_metadata, read_embeddings
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig
from bdisc.training.fit import FitConfig, fit
from bdisc.training.head import Head
from bdisc.training.margin import choose, random_pick, uncertainty

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PIHA = DATA / "pyha"
LABELS = PIHA / "ScreamingPiha_Manual_Labels.csv"
NEGATIVES = (PIHA / "xc", DATA / "noise")
SPECIES = "Lipaugus vociferans_Screaming Piha"
OVERLAP_S = 1.5
WINDOW_S = 3.0
MIN_OVERLAP_S = 1.0
# Held out: 4 of the 11 Piha recordings, half the negative clips (by sorted name).
TEST_PIHA = {"ScreamingPiha2", "ScreamingPiha5", "ScreamingPiha8", "ScreamingPiha11"}
FIT = FitConfig(epochs=60, batch_size=16, balance="class-weights")


@dataclass(frozen=True)
class Windows:
    x: np.ndarray  # float32 (N, 1024)
    y: np.ndarray  # float32 (N,)
    recording: np.ndarray  # object (N,): the recording's stem
    folder: np.ndarray  # object (N,): its folder (the stratum of a deployment)
    start: np.ndarray  # float64 (N,)

    def take(self, rows: np.ndarray) -> Windows:
        return Windows(
            *(a[rows] for a in (self.x, self.y, self.recording, self.folder, self.start))
        )


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def calls() -> dict[str, list[tuple[float, float]]]:
    """recording stem -> its labelled calls (start, end)."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with LABELS.open(newline="") as f:
        for row in csv.DictReader(f):
            start = float(row["OFFSET"])
            out[Path(row["IN FILE"]).stem].append((start, start + float(row["DURATION"])))
    return dict(out)


def positive(start: float, sounds: list[tuple[float, float]]) -> bool:
    """A labelled call overlaps the window by at least min(1 s, half the call)."""
    end = start + WINDOW_S
    return any(min(end, b) - max(start, a) >= min(MIN_OVERLAP_S, (b - a) / 2) for a, b in sounds)


def load(work: Path, workers: int) -> Windows:
    """Embed (resumable in ``work``) and label every window."""
    config = RunConfig(
        out_dir=work,
        params=AnalysisParams(overlap_s=OVERLAP_S),
        workers=workers,
        progress=False,
    )
    summary = api.embed([PIHA, *NEGATIVES], config)
    if summary.failed:  # noise/'s 0.16-s dog bark is shorter than a window
        sys.stderr.write(f"{summary.failed} recordings not embedded: see {work}/errors.csv\n")
    files = sorted((work / "embeddings").rglob("*.embeddings.parquet"))
    table, _ = read_embeddings(files)
    source = {}
    for f in files:
        rec = file_metadata(f)["recording"]
        source[rec["path"]] = Path(rec["source"])
    labelled = calls()
    recs = table.column("recording").to_pylist()
    starts = table.column("start_s").to_numpy().astype(np.float64)
    stems = np.asarray([source[r].stem for r in recs], dtype=object)
    folders = np.asarray([source[r].parent.name for r in recs], dtype=object)
    y = np.asarray(
        [positive(s, labelled.get(stem, [])) for s, stem in zip(starts, stems, strict=True)],
        dtype=np.float32,
    )
    return Windows(embedding_matrix(table), y, stems, folders, starts)


def held_out(w: Windows) -> np.ndarray:
    negatives = sorted({str(r) for r, f in zip(w.recording, w.folder, strict=True) if f != "pyha"})
    test = TEST_PIHA | set(negatives[::2])
    return np.asarray([str(r) in test for r in w.recording], dtype=bool)


def scores_of(truth: np.ndarray, score: np.ndarray) -> dict[str, float]:
    t = truth.astype(bool)
    return {
        "pr_auc": m.pr_auc(t, score),
        "average_precision": m.average_precision(t, score),
        "roc_auc": m.roc_auc(t, score),
    }


def trained(train: Windows, rows: np.ndarray, seed: int) -> Head:
    config = FitConfig(**{**FIT.__dict__, "seed": seed})
    return fit(train.x[rows], train.y[rows, None], config).head


def first_labels(train: Windows, n: int, rng: np.random.Generator) -> list[int]:
    """``n`` windows at random, at least one positive and one negative among them."""
    pos, neg = np.flatnonzero(train.y > 0), np.flatnonzero(train.y == 0)
    picked = [int(rng.choice(pos)), int(rng.choice(neg))]
    rest = np.setdiff1d(np.arange(len(train.y)), picked)
    return picked + [int(i) for i in rng.permutation(rest)[: n - 2]]


def curve(
    train: Windows, test: Windows, strategy: str, seed: int, start: int, per_round: int, rounds: int
) -> list[float]:
    rng = np.random.default_rng(seed)
    labelled = first_labels(train, start, rng)
    out = []
    for r in range(rounds + 1):
        rows = np.asarray(labelled, dtype=np.int64)
        head = trained(train, rows, seed)
        out.append(m.pr_auc(test.y.astype(bool), head.logits(test.x)[:, 0]))
        if r == rounds:
            break
        pool = np.setdiff1d(np.arange(len(train.y)), rows)
        if strategy == "random":
            picks = random_pick(len(pool), per_round, rng)
        else:
            explore = float(strategy.split(":")[1]) if ":" in strategy else 0.0
            unc = uncertainty(head.scores(train.x[pool]), [0.5])
            strata = [(str(f), int(b)) for f, b in zip(train.folder[pool], unc.band, strict=True)]
            spans = [
                (str(rec), float(s), float(s) + WINDOW_S)
                for rec, s in zip(train.recording[pool], train.start[pool], strict=True)
            ]
            picks = choose(unc.margin, strata, per_round, rng, spans, explore=explore)
        labelled += [int(pool[i]) for i in picks]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--start", type=int, default=6, help="labels before the first round")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, help="keep the embeddings here (resumable)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=["margin", "margin:0.5", "random"],
        help="margin, random, or margin:E (a share E of each round's picks at random)",
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        w = load(args.work or Path(tmp), args.workers)
    embed_s = time.perf_counter() - t0
    test_rows = held_out(w)
    train, test = w.take(~test_rows), w.take(test_rows)
    keys = [label.key for label in read_labels(default_model_dir() / LABELS_FILE)]
    base = classifier_head().logits(test.x)[:, keys.index(SPECIES)]
    every = np.arange(len(train.y))
    full = {seed: trained(train, every, seed).logits(test.x)[:, 0] for seed in range(args.seeds)}
    head = {k: float(np.mean([scores_of(test.y, s)[k] for s in full.values()])) for k in
            ("pr_auc", "average_precision", "roc_auc")}  # fmt: skip
    curves = {
        strategy: [
            curve(train, test, strategy, seed, args.start, args.per_round, args.rounds)
            for seed in range(args.seeds)
        ]
        for strategy in args.strategies
    }
    result: dict[str, Any] = {
        "data": {
            "train_windows": len(train.y),
            "train_positives": int(train.y.sum()),
            "test_windows": len(test.y),
            "test_positives": int(test.y.sum()),
            "test_recordings": sorted({str(r) for r in test.recording}),
        },
        "held_out": {"birdnet_v2.4_logit": scores_of(test.y, base), "head_all_labels": head},
        "curve": {
            "labels": [args.start + r * args.per_round for r in range(args.rounds + 1)],
            **{
                s: {
                    "mean": np.mean(c, axis=0).round(4).tolist(),
                    "std": np.std(c, axis=0).round(4).tolist(),
                }
                for s, c in curves.items()
            },
        },
        "seeds": args.seeds,
        "embed_s": round(embed_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
    }
    if args.json:
        out(json.dumps(result, indent=2))
        return
    d = result["data"]
    out(
        f"Screaming Piha, held-out windows: {d['test_windows']} ({d['test_positives']} with a "
        f"call) of {len(d['test_recordings'])} recordings; training pool {d['train_windows']} "
        f"({d['train_positives']} with a call)"
    )
    out(f"{'scorer':<40}{'PR-AUC':>8}{'AP':>8}{'ROC-AUC':>9}")
    for name, s in (
        ("BirdNET V2.4 logit (Screaming Piha)", result["held_out"]["birdnet_v2.4_logit"]),
        (f"head, all {d['train_windows']} training labels", head),
    ):
        out(f"{name:<40}{s['pr_auc']:>8.3f}{s['average_precision']:>8.3f}{s['roc_auc']:>9.3f}")
    out(f"\nactive learning: held-out PR-AUC, mean +- sd over {args.seeds} seeds")
    out(f"{'labels':>7}" + "".join(f"{s:>16}" for s in args.strategies))
    c = result["curve"]
    for i, n in enumerate(c["labels"]):
        cells = [f"{c[s]['mean'][i]:>10.3f} +-{c[s]['std'][i]:.3f}" for s in args.strategies]
        out(f"{n:>7}{''.join(cells)}")
    out(f"\nembedding {result['embed_s']} s, total {result['total_s']} s")


if __name__ == "__main__":
    main()
