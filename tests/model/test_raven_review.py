"""Clusters handed to Raven and Audacity (as the paper reviewed uncertain clusters), and a
reviewer's Raven annotations brought back as window labels that export uses."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from bdisc.cli.main import main


def _table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _write_table(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.model
def test_raven_and_audacity_review_round_trip(tmp_path: Path, audio_dir: Path) -> None:
    root = tmp_path / "project"
    for site in ("north", "south"):
        (root / site).mkdir(parents=True)
        shutil.copy(audio_dir / "soundscape.flac", root / site / "dawn.flac")
    out = tmp_path / "out"
    argv = ["discover", str(root), "--out", str(out), "--overlap", "0"]
    assert main([*argv, "--min-cluster-size", "3", "--no-progress"]) == 0

    clusters = {}
    for site in ("north", "south"):
        with (out / site / "clusters.csv").open(newline="") as f:
            clusters[site] = list(csv.DictReader(f))
        sizes = Counter(r["cluster"] for r in clusters[site])
        # One Raven table per cluster, holding exactly its windows, in the recording's time.
        for k, size in sizes.items():
            table = _table(out / site / "raven" / f"{site}_Cluster{k}.selections.txt")
            assert len(table) == size
            assert {r["Cluster"] for r in table} == {k}
            assert all(r["Begin Path"] == str(root / site / "dawn.flac") for r in table)
            assert all(r["Begin Time (s)"] == r["File Offset (s)"] for r in table)  # one file
            assert all(0.0 <= float(r["Probability"]) <= 1.0 for r in table)
        list_file = out / site / "raven" / f"{site}_Cluster{k}.selections.list.txt"
        assert list_file.read_text() == f"{root / site / 'dawn.flac'}\n"
        # One Audacity label track per recording: every window, named by its cluster.
        track = (out / site / "audacity" / "dawn.flac.labels.txt").read_text().splitlines()
        assert len(track) == 40 and track[0].split("\t")[:2] == ["0.0", "3.0"]
        assert track[0].split("\t")[2].startswith(("Cluster ", "noise"))

    # The job-wide table runs its times on over both recordings.
    job = _table(out / "raven_all_clusters.selections.txt")
    assert len(job) == 80 and {r["Folder"] for r in job} == {"north", "south"}
    south = [r for r in job if r["Folder"] == "south"]
    assert float(south[0]["Begin Time (s)"]) == 120.0 + float(south[0]["File Offset (s)"])

    # A reviewer annotates three windows in Raven; bdisc takes them back as window labels.
    for r in job:
        r["Annotation"] = "chickadee song" if r["File Offset (s)"] in ("0.0", "3.0") else ""
    _write_table(tmp_path / "reviewed.txt", job)
    noted = sum(bool(r["Annotation"]) for r in job)
    assert noted == 4
    assert main(["import-labels", str(out), str(tmp_path / "reviewed.txt")]) == 0
    # bdisc export cuts those windows under their label (no cluster is labelled).
    sheet = tmp_path / "review.csv"
    sheet.write_text("Folder,Cluster,Label\n")
    train = tmp_path / "train"
    argv = ["export", "--review", str(sheet), "--results", str(out), "--out", str(train)]
    assert main(argv) == 0
    clips = sorted(p.name for p in (train / "chickadee song").glob("*.wav"))
    assert clips == [
        "north__dawn__0.wav",
        "north__dawn__3000.wav",
        "south__dawn__0.wav",
        "south__dawn__3000.wav",
    ]
    # A table that names nothing of these results is refused with a clear message.
    stranger = [dict(job[0], **{"Begin Path": "/elsewhere/x.wav", "Annotation": "x"})]
    _write_table(tmp_path / "stranger.txt", stranger)
    assert main(["import-labels", str(out), str(tmp_path / "stranger.txt")]) == 2
