"""``bdisc analyze`` then ``bdisc evaluate`` on a real annotated survey (monitoR's survey.wav):
Black-throated Green Warbler (BTNW) and Ovenbird (OVEN) songs at known times.
Expected counts are worked out by hand from the annotations and the detections
(documented in each assertion)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from bdisc.cli.main import main


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("survey")
    shutil.copy(data_dir / "evaluation" / "survey.wav", root / "survey.wav")
    det = root / "detections"
    assert (
        main(
            [
                "analyze",
                str(root / "survey.wav"),
                "--out",
                str(det),
                "--min-conf",
                "0.05",
                "--no-progress",
            ]
        )
        == 0
    )
    truth = root / "truth.csv"
    with (data_dir / "evaluation" / "survey_anno.csv").open() as f, truth.open("w") as out:
        out.write("recording,species,start,end\n")
        for row in csv.DictReader(f):
            out.write(f"survey,{row['name']},{row['start.time']},{row['end.time']}\n")
    return det / "survey.BirdNET.results.csv", truth, data_dir / "evaluation" / "specCodes.csv"


def per_species(out: Path) -> dict[str, dict[str, str]]:
    with (out / "per_species.csv").open() as f:
        return {r["species"]: r for r in csv.DictReader(f)}


@pytest.mark.model
def test_window_level(analysed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    det, truth, codes = analysed
    assert (
        main(
            [
                "evaluate",
                "-d",
                str(det),
                "-t",
                str(truth),
                "--species-map",
                str(codes),
                "-g",
                "window",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    rows = per_species(tmp_path)
    # OVEN is annotated in windows 3,6,9,12,15,21 (>= 0.5 s overlap); detected >= 0.25 in
    # 3,6,9,12,15,18: 5 TP, 1 FP (18-21 s holds only 0.3 s of song), 1 FN (21-23.5 s, 0.147).
    assert [rows["OVEN"][k] for k in ("tp", "fp", "fn", "tn")] == ["5", "1", "1", "1"]
    # BTNW is annotated in windows 0, 9, 21; BirdNET is sure only at 0 s (0.899).
    assert [rows["BTNW"][k] for k in ("tp", "fp", "fn", "tn")] == ["1", "0", "2", "5"]
    assert "Setophaga virens" not in rows  # mapped to its code through specCodes.csv
    for name in (
        "per_threshold.csv",
        "summary.csv",
        "pr_curves.png",
        "roc_curves.png",
        "per_species.png",
        "report.md",
    ):
        assert (tmp_path / name).stat().st_size > 100, name


@pytest.mark.model
def test_sound_and_minute_level(analysed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    det, truth, codes = analysed
    assert (
        main(
            [
                "evaluate",
                "-d",
                str(det),
                "-t",
                str(truth),
                "--species-map",
                str(codes),
                "-g",
                "sound",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    rows = per_species(tmp_path / "s")
    # All 4 Ovenbird songs overlap a window scored >= 0.25; 1 of 3 warbler songs does.
    assert (rows["OVEN"]["tp"], rows["OVEN"]["fn"], rows["OVEN"]["recall"]) == ("4", "0", "1")
    assert (rows["BTNW"]["tp"], rows["BTNW"]["fn"]) == ("1", "2")
    assert rows["OVEN"]["tn"] == ""  # no negatives at the sound level
    assert (
        main(
            [
                "evaluate",
                "-d",
                str(det),
                "-t",
                str(truth),
                "--species-map",
                str(codes),
                "-g",
                "minute",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    rows = per_species(tmp_path / "m")
    assert (rows["OVEN"]["tp"], rows["BTNW"]["tp"]) == ("1", "1")
