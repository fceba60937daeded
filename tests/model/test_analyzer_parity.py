"""A drop-in for BirdNET-Analyzer 2.4: the same files, cell by cell, as its own output.

`tests/data/birdnet_analyzer_2.4.0/` holds what BirdNET-Analyzer 2.4.0 wrote for
soundscape.flac in three parameter cases (its README gives the commands); its input lay
at /tmp/bna-ref/in/soundscape.flac, which we substitute for our input's path.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bdisc.audio.reader import probe, stream_mono
from bdisc.cli.main import main
from bdisc.outputs import birdnet_formats as bf

REFERENCE_INPUT = "/tmp/bna-ref/in"

CASES = {
    "default": ["--format", "all"],
    "overlap1.5_minconf0.1_merge3": [
        "--format",
        "csv,table",
        "--overlap",
        "1.5",
        "--min_conf",  # BirdNET-Analyzer's spelling works too
        "0.1",
        "--merge-consecutive",
        "3",
    ],
    "top1_minconf0.01": ["--top-n", "1", "--min-conf", "0.01"],
}


def _analyze(tmp_path: Path, audio_dir: Path, *options: str) -> tuple[Path, Path]:
    inputs = tmp_path / "in"
    inputs.mkdir(parents=True)
    shutil.copy(audio_dir / "soundscape.flac", inputs / "soundscape.flac")
    out = tmp_path / "out"
    assert main(["analyze", str(inputs), "--out", str(out), "--no-progress", *options]) == 0
    return inputs, out


@pytest.mark.model
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_files_as_birdnet_analyzer(
    case: str, tmp_path: Path, data_dir: Path, audio_dir: Path
) -> None:
    inputs, out = _analyze(tmp_path, audio_dir, *CASES[case])
    reference = data_dir / "birdnet_analyzer_2.4.0" / case
    names = sorted(p.name for p in reference.iterdir())
    assert names, reference
    for name in names:
        want = (reference / name).read_bytes().decode()
        want = want.replace(REFERENCE_INPUT, str(inputs)).replace("/tmp/bna-ref", str(tmp_path))
        got = (out / name).read_bytes().decode()
        assert got.splitlines(keepends=True) == want.splitlines(keepends=True), name
    # Nothing else is written but our run reports and the combined tables (which
    # BirdNET-Analyzer writes only with --combine_results, as in two of the cases).
    ours = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    allowed = {"errors.csv", "run_summary.json", *bf.COMBINED.values(), bf.RAVEN_LIST}
    assert ours - set(names) <= allowed, ours - set(names)


@pytest.mark.model
def test_additional_columns(tmp_path: Path, audio_dir: Path) -> None:
    _, out = _analyze(
        tmp_path,
        audio_dir,
        "--additional-columns",
        "lat,lon,week,overlap,sensitivity,min_conf,species_list,model",
    )
    with (out / "soundscape.BirdNET.results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 25
    assert rows[0] | {"File": ""} == {
        "Start (s)": "0.0",
        "End (s)": "3.0",
        "Scientific name": "Poecile atricapillus",
        "Common name": "Black-capped Chickadee",
        "Confidence": "0.8141",
        "File": "",
        "lat": "-1",
        "lon": "-1",
        "week": "-1",
        "overlap": "0.0",
        "sensitivity": "1.0",
        "min_conf": "0.25",
        "species_list": "",
        "model": "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite",
    }


@pytest.mark.model
def test_audio_speed_makes_bat_calls_audible(tmp_path: Path, audio_dir: Path) -> None:
    """A 256-kHz pallid bat recording: at speed 1.0 the model hears only what lies below
    24 kHz; at 0.1 the calls (20-60 kHz) fall to 2-6 kHz. Times stay in the file's seconds."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(audio_dir / "ANPA-103486_first2s.wav", inputs / "bat.wav")
    in_band: dict[float, float] = {}
    info = probe(inputs / "bat.wav")
    for speed in (1.0, 0.1):
        audio = np.concatenate(list(stream_mono(info, 48_000, speed=speed)))
        power = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(audio.size, 1 / 48_000)
        # Power per second in the band the model listens to most (2-15 kHz).
        in_band[speed] = 10 * np.log10(
            power[(freqs >= 2000) & (freqs <= 15_000)].sum() / audio.size
        )
    assert in_band[0.1] > in_band[1.0] + 10.0, in_band
    for speed in ("1.0", "0.1"):
        out = tmp_path / f"speed{speed}"
        argv = ["embed", str(inputs), "--out", str(out), "--audio-speed", speed, "--no-progress"]
        assert main(argv) == 0
        table = pq.read_table(out / "embeddings" / "bat.embeddings.parquet")
        starts = table.column("start_s").to_pylist()
        ends = table.column("end_s").to_pylist()
        if speed == "0.1":
            # 2 s of audio played as 20 s: windows of 0.3 s of the file, while 0.1 s remains.
            assert np.allclose(starts, [0.3 * k for k in range(7)])
            assert np.allclose(ends, [0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.0])
            meta = table.schema.metadata[b"bdisc"].decode()
            assert '"audio_speed": 0.1' in meta
        else:
            assert starts == [0.0] and ends == [2.0]
    # Raven boxes are in the recording's own frequencies: up to 128 kHz here.
    argv = ["analyze", str(inputs), "--out", str(tmp_path / "a"), "--audio-speed", "0.1"]
    assert main([*argv, "--format", "table", "--top-n", "1", "--no-progress"]) == 0
    with (tmp_path / "a" / "bat.BirdNET.selection.table.txt").open(newline="") as f:
        first = next(csv.DictReader(f, delimiter="\t"))
    assert (first["Low Freq (Hz)"], first["High Freq (Hz)"], first["End Time (s)"]) == (
        "0",
        "128000",
        "0.3",
    )


@pytest.mark.model
def test_species_list_from_place_and_week(tmp_path: Path, audio_dir: Path) -> None:
    """`bdisc species` writes the list the location filter uses, and --species-list
    (BirdNET-Analyzer's --slist) reads it back to the same detections."""
    place = ["--lat", "42.48", "--lon", "-76.45", "--week", "20"]
    assert main(["species", *place, "--out", str(tmp_path)]) == 0
    listed = (tmp_path / "species_list.txt").read_text().splitlines()
    assert 50 < len(listed) < 400
    assert "Poecile atricapillus_Black-capped Chickadee" in listed
    assert "Pica pica_Eurasian Magpie" not in listed  # not in North America
    _, by_place = _analyze(tmp_path / "place", audio_dir, *place, "--format", "csv")
    _, by_list = _analyze(
        tmp_path / "list", audio_dir, "--slist", str(tmp_path / "species_list.txt")
    )
    name = "soundscape.BirdNET.results.csv"
    detected = (by_list / name).read_text().splitlines()
    assert 5 < len(detected) < 26  # fewer than the 25 detections without a filter, plus header
    assert (by_place / name).read_text().splitlines()[1:] == [
        line.replace(str(tmp_path / "list"), str(tmp_path / "place")) for line in detected[1:]
    ]
