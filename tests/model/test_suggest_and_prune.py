"""Active learning and pruning by a trained head on real recordings (tests/data/discovery:
Screaming Piha, Long-billed Hermit, a Scaly-breasted Hummingbird, noise beds).

A results folder where only some recordings are labelled; a head trained on them;
``bdisc suggest`` picks unlabelled windows as a review group, whose labels ``bdisc
export`` cuts and ``bdisc train`` learns; ``bdisc discover --classifier --keep-classes``
clusters only the windows the head calls Screaming Piha.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bdisc.cli.main import main
from bdisc.discovery.sheets import WindowRow, read_clusters, write_clusters
from bdisc.training.model_file import MODEL_JSON

# Labelled recordings, by deployment; the others stay unlabelled (the pool).
LABELLED = {
    "piha_site": ("Screaming Piha", {"ScreamingPiha1.mp3", "ScreamingPiha2.mp3"}),
    "hermit_site": ("Long-billed Hermit", {"lbh1.wav", "lbh2.wav", "Phae.long1.wav"}),
    "noise": ("Noise", {"street.flac", "pst_cafe.flac"}),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Embedded with 1.5-s overlap (as discover does); each recording one cluster."""
    out = tmp_path_factory.mktemp("results")
    argv = ["embed", str(data_dir / "discovery"), "--out", str(out), "--overlap", "1.5"]
    assert main([*argv, "--no-progress", "--workers", "1"]) == 0
    for folder in sorted((out / "embeddings").iterdir()):
        label, labelled = LABELLED[folder.name]
        rows, review = [], []
        for cluster, path in enumerate(sorted(folder.glob("*.embeddings.parquet")), start=1):
            table = pq.read_table(path)
            file = table.column("recording")[0].as_py().split("/", 1)[1]
            rows += [
                WindowRow(folder.name, file, float(s), float(e), cluster, 1.0, 0, 0, "", 0.0)
                for s, e in zip(
                    table.column("start_s").to_numpy(),
                    table.column("end_s").to_numpy(),
                    strict=True,
                )
            ]
            review.append([folder.name, cluster, label if file in labelled else ""])
        write_clusters(out / folder.name / "clusters.csv", rows)
        with (out / folder.name / "review.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["Folder", "Cluster", "Label"], *review])
    return out


@pytest.fixture(scope="module")
def model(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    argv = ["train", str(results), "--out", str(out), "--val-fraction", "0.4", "--no-export"]
    assert main(argv) == 0
    return out


def _windows_per_label(model: Path) -> dict[str, int]:
    meta = json.loads((model / MODEL_JSON).read_text())
    return dict(meta["training_set"]["windows_per_label"])


def _truth(folder: str, file: str) -> str:
    if folder == "noise" or "cuvi" in file:
        return "Noise"
    return "Screaming Piha" if folder == "piha_site" else "Long-billed Hermit"


@pytest.mark.model
@pytest.mark.slow
def test_suggested_windows_are_labelled_exported_and_learnt(
    results: Path, model: Path, tmp_path: Path
) -> None:
    work = Path(shutil.copytree(results, tmp_path / "results"))
    argv = ["suggest", "--model", str(model), "--results", str(work), "--n", "12"]
    assert main([*argv, "--seed", "1"]) == 0
    group = work / "suggested"
    rows = read_clusters(group / "clusters.csv")
    assert len(rows) == 12 and [r.cluster for r in rows] == list(range(1, 13))
    # only unlabelled recordings, from every deployment that has some
    assert not any(r.file in LABELLED[r.folder][1] for r in rows)
    assert {r.folder for r in rows} == {"piha_site", "hermit_site", "noise"}
    # montages of the real audio (an unreadable tile would be a near-blank image)
    assert (group / "montage.png").stat().st_size > 50_000
    assert (group / "montages" / "cluster_1.png").stat().st_size > 10_000
    # the reviewer labels each window (one cluster each) by what it is
    with (group / "review.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        names, sheet = list(reader.fieldnames or []), list(reader)
    for row, window in zip(sheet, rows, strict=True):
        assert row["Cluster"] == str(window.cluster)
        row["Label"] = _truth(window.folder, window.file)
    with (group / "review.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sheet)
    trainset = tmp_path / "trainset"
    argv = ["export", "--review", str(group / "review.csv"), "--results", str(work)]
    assert main([*argv, "--out", str(trainset)]) == 0
    clips = sorted(trainset.rglob("*.wav"))
    assert len(clips) == 12
    for clip in clips:  # <Label>/<deployment>__<file stem>__<start ms>.wav
        folder = clip.name.split("__")[0]
        assert clip.parent.name == _truth(folder, clip.name)
    again = tmp_path / "model"
    argv = ["train", str(work), "--out", str(again), "--val-fraction", "0.4", "--no-export"]
    assert main(argv) == 0
    before, after = _windows_per_label(model), _windows_per_label(again)
    assert sum(after.values()) == sum(before.values()) + 12
    # a second round skips what is labelled now
    assert main(["suggest", "--model", str(again), "--results", str(work), "--n", "12",
                 "--out", str(work / "round2")]) == 0  # fmt: skip
    second = read_clusters(work / "round2" / "clusters.csv")
    first = {(r.folder, r.file, r.start_s) for r in rows}
    assert len(second) == 12 and not first & {(r.folder, r.file, r.start_s) for r in second}


@pytest.mark.model
@pytest.mark.slow
def test_discover_keeps_only_the_windows_of_the_kept_class(
    results: Path, model: Path, data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "rec"
    shutil.copytree(data_dir / "discovery", root, ignore=shutil.ignore_patterns("*.csv"))
    out = tmp_path / "disc"
    argv = ["discover", str(root), "--out", str(out), "--no-progress", "--workers", "1"]
    assert main([*argv, "--classifier", str(model), "--keep-classes", "Tinamou"]) == 2
    assert main([*argv, "--keep-classes", "Screaming Piha"]) == 2  # needs --classifier
    assert main([*argv, "--classifier", str(model), "--keep-classes", "Screaming Piha"]) in (0, 1)
    kept = [w for path in sorted(out.glob("*/clusters.csv")) for w in read_clusters(path)]
    piha_windows = sum(
        pq.read_metadata(p).num_rows for p in (out / "embeddings" / "piha_site").iterdir()
    )
    # the kept windows are Screaming Piha recordings' (a stray noise window at most), and
    # most of those are kept (the head learnt from two of the five)
    assert sum(w.folder != "piha_site" for w in kept) <= 2
    assert sum(w.folder == "piha_site" for w in kept) >= 0.6 * piha_windows
    meta = json.loads((out / "discovery.json").read_text())
    assert meta["prune"]["classes"] == ["Screaming Piha"]
    assert meta["prune"]["removed"]["classes"] >= 80  # the hermits', the noise beds'
