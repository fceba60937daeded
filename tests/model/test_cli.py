"""The ``bdisc`` command as a user runs it: help, exit codes, workers, filters."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bdisc.cli.main import main

from .helpers import copy, write_clip

BDISC = str(Path(sys.executable).parent / "bdisc")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _help(*command: str) -> str:
    return subprocess.run(
        [BDISC, *command, "--help"], capture_output=True, text=True, check=True
    ).stdout


HELP_FLAGS = {
    ("analyze",): [
        "--out",
        "--overlap",
        "--sensitivity",
        "--lat",
        "--lon",
        "--week",
        "--species-list",
        "--format",
        "--workers",
        "--batch-size",
        "--min-conf",
        "--top-n",
        "--merge-consecutive",
        "--audio-speed",
        "--additional-columns",
        "--sigmoid-slope",
    ],
    ("embed",): [
        "--out",
        "--overlap",
        "--sensitivity",
        "--lat",
        "--lon",
        "--week",
        "--species-list",
        "--format",
        "--workers",
        "--batch-size",
        "--top-k",
        "--audio-speed",
        "--embeddings-from",
    ],
    ("discover",): [
        "--out",
        "--hours",
        "--sample",
        "--any-bird",
        "--method",
        "--min-cluster-size",
        "--group-by",
        "--montage-cap",
        "--overlap",
        "--workers",
        "--embeddings-from",
        "--prune-by-results",
    ],
    ("species",): ["--lat", "--lon", "--week", "--threshold", "--out", "--sortby"],
    ("train",): [
        "--out",
        "--head",
        "--hidden",
        "--epochs",
        "--lr",
        "--batch-size",
        "--folds",
        "--val-fraction",
        "--upsample",
        "--class-weights",
        "--seed",
        "--patience",
    ],
    ("classify",): ["--model", "--out", "--min-conf", "--rtype", "--sensitivity"],
    ("search",): ["--results", "--example", "--start", "--end", "--window", "--top", "--out"],
    ("duplicates",): ["--results", "--out", "--min-windows", "--max-distance"],
    ("import-labels",): ["results", "TABLE"],
    ("export",): ["--review", "--results", "--out", "--overrides", "--pad", "--sample-rate"],
    ("evaluate",): [
        "--detections",
        "--truth",
        "--granularity",
        "--threshold",
        "--species-map",
        "--out",
        "--min-overlap",
        "--best-by",
    ],
}


def test_help_names_the_flags_users_rely_on() -> None:
    top = _help()
    for word in ("analyze", "embed", "discover", "export", "evaluate", "species", "CC BY-NC-SA"):
        assert word in top, word
    for command, flags in HELP_FLAGS.items():
        text = _help(*command)
        missing = [f for f in flags if f not in text]
        assert not missing, (command, missing)


def test_bad_arguments_exit_2(tmp_path: Path, audio_dir: Path) -> None:
    src = str(audio_dir / "soundscape.flac")
    assert main(["analyze", src, "--out", str(tmp_path), "--sensitivity", "3"]) == 2
    assert main(["analyze", src, "--out", str(tmp_path), "--lat", "50"]) == 2
    assert main(["analyze", src, "--out", str(tmp_path), "--species-list", "nope.txt"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", src, "--out", str(tmp_path), "--format", "pdf"])
    assert exit_info.value.code == 2


@pytest.mark.model
@pytest.mark.slow
def test_two_workers_give_the_same_results(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    for i in range(3):
        write_clip(audio_dir / "soundscape.flac", src / f"r{i}.wav", 9.0 + 3 * i)
    one, two = tmp_path / "one", tmp_path / "two"
    for out, workers in ((one, "1"), (two, "2")):
        done = subprocess.run(
            [
                BDISC,
                "--log-format",
                "json",
                "analyze",
                str(src),
                "--out",
                str(out),
                "--workers",
                workers,
                "--no-progress",
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    assert rows(one / "BirdNET_CombinedTable.csv") == rows(two / "BirdNET_CombinedTable.csv")
    summary = json.loads((two / "run_summary.json").read_text())
    assert summary["done"] == 3 and summary["windows"] == 3 + 4 + 5
    logs = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(rec["msg"] == "starting" and rec["workers"] == 2 for rec in logs)


@pytest.mark.model
def test_failures_give_exit_1_and_the_rest_is_done(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    write_clip(audio_dir / "soundscape.flac", src / "ok.wav", 6.0)
    (src / "broken.flac").write_bytes(b"fLaC" + b"\x00" * 100)
    out = tmp_path / "out"
    assert main(["analyze", str(src), "--out", str(out), "--no-progress"]) == 1
    assert (out / "ok.BirdNET.results.csv").is_file()
    assert [r["path"].endswith("broken.flac") for r in rows(out / "errors.csv")] == [True]


@pytest.mark.model
def test_species_list_and_location_filters(tmp_path: Path, audio_dir: Path) -> None:
    src = copy(audio_dir / "soundscape.flac", tmp_path / "in" / "soundscape.flac")
    species = tmp_path / "species.txt"
    species.write_text("Cyanocitta cristata_Blue Jay\nHouse Finch\n")
    out = tmp_path / "list"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(out),
                "--species-list",
                str(species),
                "--no-progress",
            ]
        )
        == 0
    )
    names = {r["Common name"] for r in rows(out / "soundscape.BirdNET.results.csv")}
    assert names == {"Blue Jay", "House Finch"}
    # In Europe in June, American species such as Blue Jay are filtered out.
    out = tmp_path / "place"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(out),
                "--lat",
                "50",
                "--lon",
                "5",
                "--week",
                "22",
                "--no-progress",
            ]
        )
        == 0
    )
    names = {r["Common name"] for r in rows(out / "soundscape.BirdNET.results.csv")}
    assert "Blue Jay" not in names and "Black-capped Chickadee" not in names
    kaleido = tmp_path / "k"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(kaleido),
                "--format",
                "kaleidoscope",
                "--lat",
                "42.5",
                "--lon",
                "-76.45",
                "--no-progress",
            ]
        )
        == 0
    )
    first = rows(kaleido / "soundscape.BirdNET.results.kaleidoscope.csv")[0]
    assert (first["IN FILE"], first["lat"], first["lon"]) == (
        "soundscape.flac",
        "42.5000",
        "-76.4500",
    )


@pytest.mark.model
@pytest.mark.slow
def test_discover_and_export_from_the_command_line(tmp_path: Path, data_dir: Path) -> None:
    """The flags reach the domain: a run over the demo tree, then export of one label."""
    out = tmp_path / "disc"
    assert (
        main(
            [
                "discover",
                str(data_dir / "demo"),
                "--out",
                str(out),
                "--min-cluster-size",
                "3",
                "--pca",
                "0",
                "--seed",
                "7",
                "--montage-cap",
                "6",
                "--spec-fmax",
                "8000",
                "--no-progress",
            ]
        )
        == 0
    )
    settings = json.loads((out / "discovery.json").read_text())
    assert settings["cluster"]["min_cluster_size"] == 3 and settings["cluster"]["seed"] == 7
    assert settings["cluster"]["pca_components"] == 0 and settings["montage_cap"] == 6
    assert settings["spectrogram"]["fmax"] == 8000.0
    with (out / "site_a" / "review.csv").open(newline="") as f:
        first = next(csv.DictReader(f))
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"Folder,Cluster,Label\n{first['Folder']},{first['Cluster']},song\n")
    assert (
        main(
            [
                "export",
                "--review",
                str(sheet),
                "--results",
                str(out),
                "--out",
                str(tmp_path / "train"),
                "--pad",
                "0.5",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "train" / "song").glob("*.wav"))) == int(first["Size"])
