"""The paper's numbers (birdnet-discovery), recomputed from its own per-file and per-window data.

Two documented differences with the published tables:
1. ``Calcariuspictus`` in the metrics table: the original code removed the space from the
   species name but not from the detections, so its one detection (0.4914 in
   AR96_20220616_143000) never matched. We count it: FP 1, TN 345 instead of 0 and 346.
2. ROC tables: 11 of the 346 annotated recordings (20220617_* and 20220618_*) have no
   per-window CSV in the published data, so their detections are missing here. Every
   cell that differs is explained by them: our TP and FP are never higher, and lower by
   at most the number of those recordings that are positive (TP) or negative (FP). The
   sweep uses the thresholds as the original rounded them (0.11 for 0.1053, ...).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from bdisc.evaluation.api import evaluate
from bdisc.evaluation.config import EvalConfig
from bdisc.evaluation.readers import read_truth
from bdisc.evaluation.results import EvalResult, SpeciesResult
from bdisc.evaluation.species_map import SpeciesMap

ROUNDED_SWEEP = [round(float(t), 2) for t in np.linspace(0.0, 1.0, 20)]
MISSING_CSVS = {
    "20220617_170000",
    "20220617_070000",
    "20220617_110000",
    "20220617_233000",
    "20220617_140000",
    "20220617_083000",
    "20220618_190000",
    "20220618_050000",
    "20220618_143000",
    "20220618_020000",
    "20220618_013000",
}


def key(name: str) -> str:
    return name.replace(" ", "").casefold()


@pytest.fixture(scope="module")
def ev(data_dir: Path) -> Path:
    return data_dir / "evaluation"


def test_per_file_metrics_at_025(ev: Path, tmp_path: Path) -> None:
    perf = ev / "base_bnet_labels_CHECKED_300_performance_data.csv"
    result = evaluate(EvalConfig([perf], [perf], tmp_path, threshold=0.25, plots=False))
    ours = {key(r.species): r for r in result.species}
    with (ev / "base_bnet_labels_CHECKED_300_performance_metrics.csv").open() as f:
        published = list(csv.DictReader(f))
    assert len(published) == 23
    for row in published:
        r = ours[key(row["Species"])]
        counts = (r.at.tp, r.at.tn, r.at.fp, r.at.fn, r.n_truth, r.n_detected)
        if row["Species"] == "Calcariuspictus":  # difference 1 in the module docstring
            assert counts == (0, 345, 1, 0, 0, 1)
            continue
        assert counts == tuple(
            int(row[k]) for k in ("TPos", "TNeg", "FPos", "FNeg", "nMan", "nNet")
        ), row["Species"]
        for col, value in (
            ("Accuracy", r.at.accuracy),
            ("Precision", r.at.precision),
            ("Recall", r.at.recall),
        ):
            if row[col] == "":
                assert math.isnan(value), (row["Species"], col)
            else:
                assert value * 100 == pytest.approx(float(row[col]), abs=5e-4), (
                    row["Species"],
                    col,
                )
    # The per-species table on disk carries the same numbers.
    with (tmp_path / "per_species.csv").open() as f:
        gwfg = next(r for r in csv.DictReader(f) if r["species"] == "GWFG")
    assert (gwfg["tp"], gwfg["tn"], gwfg["fp"], gwfg["fn"]) == ("19", "233", "1", "93")


def roc_check(ev: Path, detections: str, published: str, tmp: Path) -> tuple[EvalResult, int, int]:
    perf = ev / "base_bnet_labels_CHECKED_300_performance_data.csv"
    result = evaluate(
        EvalConfig(
            [ev / detections],
            [perf],
            tmp,
            thresholds=ROUNDED_SWEEP,
            species_map=ev / "specCodes.csv",
            plots=False,
        )
    )
    truth, recordings = read_truth([perf], SpeciesMap.read(ev / "specCodes.csv"))
    assert len(recordings) == 346
    positives_missing: dict[str, int] = {}
    for a in truth:
        if a.recording in MISSING_CSVS:
            positives_missing[key(a.species)] = positives_missing.get(key(a.species), 0) + 1
    ours: dict[str, SpeciesResult] = {key(r.species): r for r in result.species}
    cells = differing = 0
    with (ev / published).open() as f:
        for row in csv.DictReader(f):
            species = key(row["spec"])
            if species not in ours:  # only in the 11 missing recordings, or difference 1
                assert species in {"calcariuspictus", "pefa"}, species
                continue
            r = ours[species]
            pos, neg = r.n_truth, 346 - r.n_truth
            for t, c in r.sweep:
                cells += 1
                label = f"conf{t}"
                tpr, fpr = row[f"{label}_tp"], row[f"{label}_fp"]
                their_tp = round(float(tpr) * pos) if tpr else 0
                their_fp = round(float(fpr) * neg) if fpr else 0
                if (their_tp, their_fp) == (c.tp, c.fp):
                    if row[f"{label}_pre"]:
                        assert c.precision == pytest.approx(float(row[f"{label}_pre"]), abs=6e-6)
                    continue
                differing += 1
                missing_pos = positives_missing.get(species, 0)
                assert 0 <= their_tp - c.tp <= missing_pos, (row["spec"], t)
                assert 0 <= their_fp - c.fp <= len(MISSING_CSVS) - missing_pos, (row["spec"], t)
    return result, cells, differing


def test_roc_tables_from_raw_detections(ev: Path, tmp_path: Path) -> None:
    base, cells, differing = roc_check(
        ev, "base_bnet_detections.csv.gz", "base_bnet_labels_CHECKED_ROC_data.csv", tmp_path / "b"
    )
    assert (cells, differing) == (620, 98)  # 31 species x 20 thresholds; all differences explained
    asnet, cells, differing = roc_check(
        ev, "asnet_final_detections.csv.gz", "asnet_labels_ROC_data.csv", tmp_path / "a"
    )
    assert (cells, differing) == (820, 473)  # the custom model hears much more in those 11
    # The paper's finding holds: the custom classifier ranks far better than base BirdNET
    # (paper: macro ROC-AUC 0.888 vs 0.593; see the README for ours and why they differ).
    b, a = base.summary["macro_roc_auc"], asnet.summary["macro_roc_auc"]
    assert isinstance(a, float) and isinstance(b, float) and a - b > 0.15
