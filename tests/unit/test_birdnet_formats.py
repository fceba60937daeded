"""The BirdNET-Analyzer file formats, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import ConfigError
from bdisc.model.labels import Label
from bdisc.outputs import birdnet_formats as bf
from bdisc.params import AnalysisParams

CHICKADEE = Label("Poecile atricapillus", "Black-capped Chickadee")
REC = bf.RecordingDetections(
    Path("/data/site/rec.wav"),
    22_050,
    12.0,
    [bf.DetectionRow(0.0, 3.0, CHICKADEE, 0.81406), bf.DetectionRow(10.5, 12.0, CHICKADEE, 0.2)],
)


def test_csv() -> None:
    assert bf.render("csv", REC, bf.Report(AnalysisParams())) == (
        "Start (s),End (s),Scientific name,Common name,Confidence,File\n"
        "0.0,3.0,Poecile atricapillus,Black-capped Chickadee,0.8141,/data/site/rec.wav\n"
        "10.5,12.0,Poecile atricapillus,Black-capped Chickadee,0.2000,/data/site/rec.wav\n"
    )


def test_raven_caps_the_band_at_the_native_nyquist_and_bandpass() -> None:
    text = bf.render("table", REC, bf.Report(AnalysisParams(bandpass=Bandpass(500, 15_000))))
    header, first, _ = text.splitlines()
    assert header.split("\t") == bf.RAVEN_HEADER
    assert first.split("\t") == [
        "1",
        "Spectrogram 1",
        "1",
        "0.0",
        "3.0",
        "500",
        "11025",
        "Black-capped Chickadee",
        "bkcchi",  # the eBird code, as BirdNET-Analyzer 2.4
        "0.8141",
        "/data/site/rec.wav",
        "0.0",
    ]


def test_raven_empty_table_has_the_nocall_line() -> None:
    empty = bf.RecordingDetections(Path("/a.wav"), 48_000, 5.0, [])
    lines = bf.render("table", empty, bf.Report(AnalysisParams())).splitlines()
    assert lines[1].split("\t")[7:9] == ["nocall", "nocall"]


def test_audacity_and_kaleidoscope() -> None:
    assert bf.render("audacity", REC, bf.Report(AnalysisParams())).splitlines()[0] == (
        "0.0\t3.0\tPoecile atricapillus, Black-capped Chickadee\t0.8141"
    )
    params = AnalysisParams(lat=42.5, lon=-76.45, week=4, overlap_s=1.0)
    lines = bf.render("kaleidoscope", REC, bf.Report(params)).splitlines()
    assert lines[0].split(",") == bf.KALEIDOSCOPE_HEADER
    assert lines[2] == (
        "/data,site,rec.wav,10.5,1.5,Poecile atricapillus,"
        "Black-capped Chickadee,0.2000,42.5000,-76.4500,4,1.0,1.0"
    )


def test_combined_raven_table_runs_times_on(tmp_path: Path) -> None:
    second = bf.RecordingDetections(
        Path("/data/b.wav"), 48_000, 6.0, [bf.DetectionRow(3.0, 6.0, CHICKADEE, 0.5)]
    )
    empty = bf.RecordingDetections(Path("/data/c.wav"), 48_000, 6.0, [])
    written = bf.write_combined(
        tmp_path, ["csv", "table"], [REC, empty, second], bf.Report(AnalysisParams())
    )
    assert [p.name for p in written] == [
        "BirdNET_CombinedTable.csv",
        "BirdNET_SelectionTable.txt",
        "BirdNET_SelectionTable.list.txt",
        "BirdNET_analysis_params.csv",
    ]
    assert (tmp_path / bf.RAVEN_LIST).read_text().splitlines() == [
        "/data/site/rec.wav",
        "/data/c.wav",
        "/data/b.wav",
    ]
    raven = [
        line.split("\t") for line in (tmp_path / bf.COMBINED["table"]).read_text().splitlines()
    ]
    assert [r[0] for r in raven[1:]] == ["1", "2", "3"]
    assert raven[3][3:5] == ["21.0", "24.0"] and raven[3][11] == "3.0"  # 12 s + 6 s offset
    assert len((tmp_path / bf.COMBINED["csv"]).read_text().splitlines()) == 4


JAY = Label("Cyanocitta cristata", "Blue Jay")


def _rows(*rows: tuple[float, float, Label, float]) -> bf.RecordingDetections:
    return bf.RecordingDetections(Path("/r.wav"), 48_000, 30.0, [bf.DetectionRow(*r) for r in rows])


def test_merge_consecutive_as_birdnet_analyzer() -> None:
    """Runs of touching windows per species, at most N, scored by the mean of the best three;
    rows ordered by start, species in the order first detected."""
    rec = _rows(
        (0.0, 3.0, JAY, 0.9),
        (0.0, 3.0, CHICKADEE, 0.3),
        (3.0, 6.0, CHICKADEE, 0.5),
        (3.0, 6.0, JAY, 0.2),
        (6.0, 9.0, JAY, 0.4),
        (9.0, 12.0, JAY, 0.6),
        (15.0, 18.0, JAY, 0.7),
    )
    merged = bf.report_rows(rec, bf.Report(AnalysisParams(), merge_consecutive=3))
    assert [(r.start_s, r.end_s, r.label.common, round(r.score, 4)) for r in merged] == [
        (0.0, 9.0, "Blue Jay", 0.5),  # three merged: mean of 0.9, 0.2, 0.4
        (0.0, 6.0, "Black-capped Chickadee", 0.4),
        (9.0, 12.0, "Blue Jay", 0.6),  # the fourth starts a new row
        (15.0, 18.0, "Blue Jay", 0.7),  # a gap: not merged
    ]
    # Unlimited runs keep only the best three scores in the mean.
    five = _rows(*[(3.0 * i, 3.0 * i + 3, JAY, s) for i, s in enumerate([0.1, 0.9, 0.8, 0.7, 0.2])])
    (row,) = bf.report_rows(five, bf.Report(AnalysisParams(), merge_consecutive=10))
    assert (row.start_s, row.end_s, round(row.score, 4)) == (0.0, 15.0, 0.8)
    # 0 and 1 leave the rows as they are.
    assert bf.report_rows(rec, bf.Report(AnalysisParams(), merge_consecutive=1)) == list(rec.rows)


def test_additional_columns_and_settings_file() -> None:
    report = bf.Report(
        AnalysisParams(min_conf=0.5, overlap_s=1.5),
        additional_columns=("model", "lat", "min_conf", "species_list"),
        species_list_file="list.txt",
        model_file="BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite",
    )
    header, first, _ = bf.render("csv", REC, report).splitlines()
    assert header.endswith(",Confidence,File,lat,min_conf,species_list,model")  # fixed order
    assert first.endswith(
        ",/data/site/rec.wav,-1,0.5,list.txt,BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
    )
    assert bf.params_table(report).split("\r\n")[1] == "600,3.0,48000,1.5,1.0,0,15000,1,1.0,"
    with pytest.raises(ConfigError, match="unknown additional columns"):
        bf.Report(AnalysisParams(), additional_columns=("elevation",))


def test_the_public_api_is_curated() -> None:
    import bdisc

    assert sorted(bdisc.__all__) == [
        "AnalysisParams",
        "Bandpass",
        "BdiscError",
        "RunConfig",
        "__version__",
        "analyze",
        "embed",
    ]
    assert all(hasattr(bdisc, name) for name in bdisc.__all__)
