"""The BirdNET-Analyzer file formats, byte for byte."""

from __future__ import annotations

from pathlib import Path

from bdisc.audio.bandpass import Bandpass
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
    assert bf.render("csv", REC, AnalysisParams()) == (
        "Start (s),End (s),Scientific name,Common name,Confidence,File\n"
        "0.0,3.0,Poecile atricapillus,Black-capped Chickadee,0.8141,/data/site/rec.wav\n"
        "10.5,12.0,Poecile atricapillus,Black-capped Chickadee,0.2000,/data/site/rec.wav\n"
    )


def test_raven_caps_the_band_at_the_native_nyquist_and_bandpass() -> None:
    text = bf.render("table", REC, AnalysisParams(bandpass=Bandpass(500, 15_000)))
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
        "Poecile atricapillus_Black-capped Chickadee",
        "0.8141",
        "/data/site/rec.wav",
        "0.0",
    ]


def test_raven_empty_table_has_the_nocall_line() -> None:
    empty = bf.RecordingDetections(Path("/a.wav"), 48_000, 5.0, [])
    lines = bf.render("table", empty, AnalysisParams()).splitlines()
    assert lines[1].split("\t")[7:9] == ["nocall", "nocall"]


def test_audacity_and_kaleidoscope() -> None:
    assert bf.render("audacity", REC, AnalysisParams()).splitlines()[0] == (
        "0.0\t3.0\tPoecile atricapillus, Black-capped Chickadee\t0.8141"
    )
    params = AnalysisParams(lat=42.5, lon=-76.45, week=4, overlap_s=1.0)
    lines = bf.render("kaleidoscope", REC, params).splitlines()
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
    written = bf.write_combined(tmp_path, ["csv", "table"], [REC, empty, second], AnalysisParams())
    assert [p.name for p in written] == ["BirdNET_CombinedTable.csv", "BirdNET_SelectionTable.txt"]
    raven = [
        line.split("\t") for line in (tmp_path / bf.COMBINED["table"]).read_text().splitlines()
    ]
    assert [r[0] for r in raven[1:]] == ["1", "2", "3"]
    assert raven[3][3:5] == ["21.0", "24.0"] and raven[3][11] == "3.0"  # 12 s + 6 s offset
    assert len((tmp_path / bf.COMBINED["csv"]).read_text().splitlines()) == 4


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
