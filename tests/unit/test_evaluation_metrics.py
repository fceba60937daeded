"""Metrics against scikit-learn, and the unit semantics on hand-made tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from bdisc.evaluation import metrics as m
from bdisc.evaluation.readers import read_detections, read_truth
from bdisc.evaluation.records import Annotation, Detection, recording_name
from bdisc.evaluation.species_map import SpeciesMap
from bdisc.evaluation.units import UnitOptions, build


@pytest.mark.parametrize("seed", range(5))
def test_aucs_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(200) < 0.3
    score = np.round(rng.random(200) * 0.6 + truth * 0.3, 2)  # ties on purpose
    score[rng.random(200) < 0.2] = -np.inf  # units without any detection
    ranked = np.where(np.isfinite(score), score, -1.0)
    assert m.roc_auc(truth, score) == pytest.approx(roc_auc_score(truth, ranked))
    finite = np.isfinite(score)
    # AP over detected units only: undetected units never enter the PR curve.
    expected_ap = average_precision_score(truth[finite], score[finite]) * (
        truth[finite].sum() / truth.sum()
    )
    assert m.average_precision(truth, score) == pytest.approx(expected_ap)


def test_confusion_metrics() -> None:
    c = m.confusion(np.array([1, 1, 0, 0, 1], bool), np.array([0.9, 0.2, 0.3, -np.inf, 0.5]), 0.25)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == pytest.approx(2 / 3)
    assert c.accuracy == pytest.approx(3 / 5) and c.fpr == pytest.approx(0.5)
    assert c.f_beta(1.0) == pytest.approx(2 / 3)
    assert c.f_beta(0.5) == pytest.approx(2 / 3)
    empty = m.Confusion(0, 0, 3, 10)
    assert math.isnan(empty.precision) and empty.recall == 0.0
    assert m.sweep_auc(np.array([0.0, 0.5]), np.array([0.5, 1.0])) == pytest.approx(0.875)


def test_recording_names() -> None:
    assert recording_name("/x/site/20220606_160000.BirdNET.results.csv") == "20220606_160000"
    assert recording_name("20220606_160000.wav") == "20220606_160000"
    assert recording_name("C:\\data\\rec 1.flac") == "rec 1"
    assert recording_name("a.BirdNET.results.csv.gz") == "a"


DETS = [
    Detection("r1", "OVEN", 0.9, 0.0, 3.0),
    Detection("r1", "OVEN", 0.3, 3.0, 6.0),
    Detection("r1", "BTNW", 0.6, 6.0, 9.0),
    Detection("r1", "OVEN", 0.8, 60.0, 63.0),
    Detection("r2", "OVEN", 0.5, 0.0, 3.0),
    Detection("other", "OVEN", 0.99, 0.0, 3.0),
]
TRUTH = [
    Annotation("r1", "OVEN", 1.0, 2.0),
    Annotation("r1", "OVEN", 5.8, 7.0),
    Annotation("r1", "BTNW", 30.0, 31.0),
    Annotation("r1", "OVEN", 61.0, 62.0),
]


def test_file_units() -> None:
    table = build("file", TRUTH, {"r1", "r2"}, DETS)
    assert table.species == ["BTNW", "OVEN"] and table.ignored_detections == 1
    assert table.truth.tolist() == [[True, True], [False, False]]
    assert table.score.tolist() == [[0.6, 0.9], [-np.inf, 0.5]]


def test_window_units_need_the_overlap() -> None:
    table = build("window", TRUTH, {"r1"}, DETS, UnitOptions(min_overlap_s=0.5))
    rows = {u[1]: i for i, u in enumerate(table.units)}
    oven = table.species.index("OVEN")
    assert table.truth[rows[0.0], oven] and table.truth[rows[60.0], oven]
    # 5.8-7.0 overlaps 3-6 by 0.2 s (not enough) and 6-9 by 1.0 s.
    assert not table.truth[rows[3.0], oven] and table.truth[rows[6.0], oven]
    assert table.score[rows[3.0], oven] == 0.3 and table.units[rows[30.0]][2] == 33.0


def test_minute_and_sound_units() -> None:
    minutes = build("minute", TRUTH, {"r1"}, DETS)
    assert [u[1] for u in minutes.units] == [0.0, 60.0]
    assert minutes.truth[:, minutes.species.index("BTNW")].tolist() == [True, False]
    sounds = build("sound", TRUTH, {"r1"}, DETS)
    oven = sounds.species.index("OVEN")
    assert sounds.score[:, oven].tolist() == [0.9, 0.3, -np.inf, 0.8]  # 5.8-7.0 overlaps 3-6
    assert sounds.false_detections is not None
    assert sounds.false_detections["BTNW"].tolist() == [0.6]  # nowhere near 30-31 s


def test_readers_recognise_formats(tmp_path: Path) -> None:
    raven = tmp_path / "rec7.BirdNET.selection.table.txt"
    raven.write_text(
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\t"
        "Common Name\tSpecies Code\tConfidence\tBegin Path\tFile Offset (s)\n"
        "1\tSpectrogram 1\t1\t3.0\t6.0\t0\t15000\tOvenbird\tSeiurus aurocapilla_Ovenbird\t0.9"
        "\t/d/rec7.wav\t3.0\n"
    )
    kaleido = tmp_path / "k.csv"
    kaleido.write_text(
        "INDIR,FOLDER,IN FILE,OFFSET,DURATION,scientific_name,common_name,"
        "confidence,lat,lon,week,overlap,sensitivity\n"
        "/d,site,rec8.wav,6.0,3.0,Seiurus aurocapilla,Ovenbird,0.7,-1,-1,-1,0,1\n"
    )
    smap = SpeciesMap(by_name={"seiurus aurocapilla": "OVEN", "ovenbird": "OVEN"})
    found = read_detections([raven, kaleido], smap)
    assert [(d.recording, d.species, d.score, d.start_s, d.end_s) for d in found] == [
        ("rec7", "OVEN", 0.9, 3.0, 6.0),
        ("rec8", "OVEN", 0.7, 6.0, 9.0),
    ]
    truth = tmp_path / "truth.csv"
    truth.write_text("IN FILE,OFFSET,DURATION,MANUAL ID\nrec7.wav,1.5,2.0,Ovenbird\nrec9.wav,,,\n")
    annotations, recordings = read_truth([truth], smap)
    assert annotations == [Annotation("rec7", "OVEN", 1.5, 3.5)]
    assert recordings == {"rec7", "rec9"}  # rec9: annotated, nothing in it
    minutes = tmp_path / "minutes.csv"
    minutes.write_text("recording,minute,species\nrec7,2,Mystery bird\n")
    annotations, _ = read_truth([minutes], smap)
    assert annotations == [Annotation("rec7", "Mystery bird", 120.0, 180.0)]
    assert smap.unmapped == {"Mystery bird"}


def test_a_gzip_bomb_is_refused_not_read(tmp_path: Path) -> None:
    """50 MB of zeros in 50 kB of gzip: refused once past the cap, not decompressed whole."""
    import gzip

    from bdisc.errors import TooLarge
    from bdisc.interop.analyzer_results import read_table

    bomb = tmp_path / "detections.csv.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(b"Start (s),End (s),Scientific name,Common name,Confidence\n")
        for _ in range(50):
            f.write(b"\0" * (1 << 20))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(TooLarge, match="once decompressed"):
        read_table(bomb, limit=8 << 20)
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "1,2\n" * 1000)
    with pytest.raises(TooLarge, match="rows"):
        read_table(rows, max_rows=999)
    assert len(read_table(rows)[1]) == 1000
