"""Training a classifier on real recordings (tests/data/discovery: Screaming Piha,
Long-billed Hermit, noise beds), from a results folder's labelled clusters and from a
folder of clips; its model folder; classifying stored embeddings and audio with it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bdisc.cli.main import main
from bdisc.discovery.sheets import WindowRow, write_clusters
from bdisc.errors import IncompatibleArtifact
from bdisc.model.birdnet import MODEL_FILE, default_model_dir, file_sha256
from bdisc.outputs.birdnet_formats import COMBINED, PARAMS_FILE, SUFFIX
from bdisc.outputs.embeddings import embedding_matrix
from bdisc.training.api import TrainConfig, train
from bdisc.training.fit import FitConfig
from bdisc.training.head import Head
from bdisc.training.model_file import MODEL_JSON, load_model
from bdisc.training.tflite_export import LABELS_FILE, TFLITE_FILE
from bdisc.training.tflite_export import PARAMS_FILE as CLASSIFIER_PARAMS

# Each deployment's label; Phae.cuvi (a Scaly-breasted Hummingbird) stays unlabelled.
LABELS = {"piha_site": "Screaming Piha", "hermit_site": "Long-billed Hermit", "noise": "Noise"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A discover results folder: the recordings embedded with 1.5-s overlap, each
    recording one cluster, each deployment's clusters labelled in its review.csv."""
    out = tmp_path_factory.mktemp("results")
    argv = ["embed", str(data_dir / "discovery"), "--out", str(out), "--overlap", "1.5"]
    assert main([*argv, "--no-progress"]) == 0
    for folder in sorted((out / "embeddings").iterdir()):
        rows, review = [], []
        for cluster, path in enumerate(sorted(folder.glob("*.embeddings.parquet")), start=1):
            table = pq.read_table(path)
            file = table.column("recording")[0].as_py().split("/", 1)[1]
            starts = [float(s) for s in table.column("start_s").to_numpy()]
            ends = [float(e) for e in table.column("end_s").to_numpy()]
            rows += [
                WindowRow(folder.name, file, s, e, cluster, 1.0, 0.0, 0.0, "", 0.0)
                for s, e in zip(starts, ends, strict=True)
            ]
            review.append([folder.name, cluster, "" if "cuvi" in file else LABELS[folder.name]])
        write_clusters(out / folder.name / "clusters.csv", rows)
        with (out / folder.name / "review.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["Folder", "Cluster", "Label"], *review])
    return out


@pytest.fixture(scope="module")
def trained(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    argv = ["train", str(results), "--out", str(out), "--val-fraction", "0.4", "--seed", "0"]
    assert main(argv) == 0
    return out


@pytest.mark.model
def test_training_learns_from_labelled_clusters(trained: Path, results: Path) -> None:
    meta = json.loads((trained / MODEL_JSON).read_text())
    assert meta["classes"] == ["Long-billed Hermit", "Screaming Piha"]
    assert meta["base_model"]["sha256"] == file_sha256(default_model_dir() / MODEL_FILE)
    assert meta["base_model"]["name"] == "BirdNET_GLOBAL_6K_V2.4"
    assert meta["base_model"]["precision"] == "FP32"
    counts = meta["training_set"]["windows_per_label"]
    # every window of the labelled recordings, none of the unlabelled Phae.cuvi's
    assert counts == {"Long-billed Hermit": 12, "Noise": 51, "Screaming Piha": 114}
    assert len(meta["training_set"]["sha256"]) == 64 and meta["seed"] == 0
    assert meta["hyperparameters"]["head"] == "linear"
    assert meta["embedding"]["overlap_s"] == 1.5
    report = json.loads((trained / "metrics.json").read_text())
    by_class = {c["label"]: c for c in report["classes"]}
    for label, c in by_class.items():
        chance = c["positives"] / (c["positives"] + c["negatives"])
        assert c["positives"] >= 3, label
        # held-out recordings ranked far better than chance (Hermit's chance: 0.05)
        assert c["average_precision"] >= 0.9 and c["average_precision"] > chance + 0.25, c
        assert c["roc_auc"] >= 0.9 and 0 < c["best_threshold"] <= 1 and c["best_f1"] >= 0.7
    confusion = list(csv.reader((trained / "confusion.csv").open()))
    assert confusion[0] == ["true \\ predicted", "Long-billed Hermit", "Screaming Piha", "Noise"]
    per_class = list(csv.DictReader((trained / "metrics.csv").open()))
    assert [r["label"] for r in per_class] == ["Long-billed Hermit", "Screaming Piha"]
    assert (trained / TFLITE_FILE).stat().st_size > 1_000_000
    assert (trained / LABELS_FILE).read_text() == "Long-billed Hermit\nScreaming Piha\n"
    params = (trained / CLASSIFIER_PARAMS).read_text().splitlines()
    assert params[0].startswith("Hidden units,Dropout,Batchsize,Learning rate,Crop mode")
    assert params[1].split(",")[0] == "0" and params[1].endswith(",V2.4")


@pytest.mark.model
def test_same_seed_same_weights(results: Path, trained: Path, tmp_path: Path) -> None:
    again = train(TrainConfig(results, tmp_path / "a", FitConfig(seed=0), 0.4, export=False))
    kept = Head.load(trained / "head.npz")
    for a, b in zip(again.head.layers, kept.layers, strict=True):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    meta_a = json.loads((tmp_path / "a" / MODEL_JSON).read_text())
    assert meta_a["training_set"] == json.loads((trained / MODEL_JSON).read_text())["training_set"]
    other = train(TrainConfig(results, tmp_path / "b", FitConfig(seed=1), 0.4, export=False))
    assert not np.array_equal(other.head.layers[0].weights, kept.layers[0].weights)


@pytest.mark.model
def test_excluded_spans_are_left_out_of_the_training_set(
    results: Path, trained: Path, tmp_path: Path
) -> None:
    """A copy listed by `bdisc duplicates` (a whole recording, and a stretch of another)
    trains nothing: its windows are not in the set, and model.json says how many."""
    piha = pq.read_table(results / "embeddings/piha_site/ScreamingPiha4.embeddings.parquet")
    hermit = pq.read_table(results / "embeddings/hermit_site/lbh1.embeddings.parquet")
    starts = sorted(float(s) for s in hermit.column("start_s").to_numpy())
    spans = tmp_path / "duplicates_exclude.csv"
    spans.write_text(
        "recording,start_s,end_s,kind,duplicate_of\n"
        "piha_site/ScreamingPiha4.mp3,0,10000,recording,piha_site/ScreamingPiha1.mp3\n"
        f"hermit_site/lbh1.wav,{starts[0]},{starts[1] + 3},stretch,hermit_site/lbh2.wav\n"
    )
    argv = ["train", str(results), "--out", str(tmp_path / "m"), "--val-fraction", "0.4"]
    assert main([*argv, "--exclude", str(spans), "--no-export"]) == 0
    meta = json.loads((tmp_path / "m" / MODEL_JSON).read_text())
    before = json.loads((trained / MODEL_JSON).read_text())["training_set"]
    after = meta["training_set"]
    assert after["excluded"] == {"list": spans.name, "windows": piha.num_rows + 2}
    assert after["windows_per_label"] == {
        "Long-billed Hermit": before["windows_per_label"]["Long-billed Hermit"] - 2,
        "Noise": before["windows_per_label"]["Noise"],
        "Screaming Piha": before["windows_per_label"]["Screaming Piha"] - piha.num_rows,
    }
    broken = tmp_path / "broken.csv"
    broken.write_text("recording,start\nx,1\n")
    assert main([*argv, "--exclude", str(broken)]) == 2  # named columns missing: a user error


@pytest.mark.model
def test_a_model_of_another_base_model_is_refused(trained: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(trained, tmp_path / "model"))
    meta = json.loads((copy / MODEL_JSON).read_text())
    meta["base_model"]["sha256"] = "0" * 64
    (copy / MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(IncompatibleArtifact):
        load_model(copy)
    assert load_model(trained).classes == ("Long-billed Hermit", "Screaming Piha")
    argv = ["classify", str(tmp_path), "--model", str(copy), "--out", str(tmp_path / "o")]
    assert main(argv) == 2  # a user error, reported


@pytest.mark.model
def test_classify_stored_embeddings_writes_birdnet_analyzer_formats(
    trained: Path, results: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["classify", str(results), "--model", str(trained), "--out", str(out)]
    assert main([*argv, "--rtype", "all", "--min-conf", "0.5"]) == 0
    for fmt in SUFFIX.values():
        assert (out / "piha_site" / f"ScreamingPiha1{fmt}").is_file()
    for name in (*COMBINED.values(), PARAMS_FILE):
        assert (out / name).is_file()
    params = next(csv.DictReader((out / PARAMS_FILE).open()))
    assert params["Custom classifier path"] == str(trained / TFLITE_FILE)
    assert params["Segment overlap"] == "1.5"
    rows = list(csv.DictReader((out / COMBINED["csv"]).open()))
    assert {r["Common name"] for r in rows} <= {"Long-billed Hermit", "Screaming Piha"}
    # the scores are the head's on the stored embeddings (BirdNET-Analyzer's sigmoid)
    model = load_model(trained)
    table = pq.read_table(
        results / "embeddings" / "piha_site" / "ScreamingPiha1.embeddings.parquet"
    )
    piha = model.head.scores(embedding_matrix(table))[:, 1]
    mine = [r for r in rows if r["File"].endswith("ScreamingPiha1.mp3")]
    expected = [f"{s:.4f}" for s in piha if s >= 0.5]
    assert sorted(r["Confidence"] for r in mine if r["Common name"] == "Screaming Piha") == sorted(
        expected
    )
    assert len(expected) >= 10  # most windows of a Screaming Piha recording
    noise = [r for r in rows if "/noise/" in r["File"]]
    assert len(noise) < len(mine)


@pytest.mark.model
def test_retraining_without_export_leaves_no_classifier_to_name(
    trained: Path, results: Path, tmp_path: Path
) -> None:
    """model.json records the exported classifier's SHA-256; training again with
    --no-export removes the earlier files, and classify then names no classifier."""
    meta = json.loads((trained / MODEL_JSON).read_text())
    assert meta["files"][TFLITE_FILE] == file_sha256(trained / TFLITE_FILE)
    assert meta["files"]["head.npz"] == file_sha256(trained / "head.npz")
    model = Path(shutil.copytree(trained, tmp_path / "model"))
    argv = ["train", str(results), "--out", str(model), "--val-fraction", "0.4", "--no-export"]
    assert main([*argv, "--seed", "1"]) == 0
    assert not (model / TFLITE_FILE).exists() and not (model / LABELS_FILE).exists()
    assert TFLITE_FILE not in json.loads((model / MODEL_JSON).read_text())["files"]
    (model / TFLITE_FILE).write_bytes((trained / TFLITE_FILE).read_bytes())  # put back
    out = tmp_path / "out"
    assert main(["classify", str(results), "--model", str(model), "--out", str(out)]) == 0
    params = next(csv.DictReader((out / PARAMS_FILE).open()))
    assert params["Custom classifier path"] == ""


@pytest.mark.model
def test_classify_audio_embeds_it_first(trained: Path, data_dir: Path, tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copy(data_dir / "discovery" / "piha_site" / "ScreamingPiha4.mp3", audio)
    out = tmp_path / "out"
    argv = ["classify", str(audio), "--model", str(trained), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert (out / "embeddings" / "ScreamingPiha4.embeddings.parquet").is_file()
    rows = list(csv.DictReader((out / "ScreamingPiha4.BirdNET.results.csv").open()))
    assert any(r["Common name"] == "Screaming Piha" for r in rows)
    # a second run finds the embeddings stored and runs no model
    before = (out / "embeddings" / "ScreamingPiha4.embeddings.parquet").stat().st_mtime_ns
    assert main(argv) == 0
    after = (out / "embeddings" / "ScreamingPiha4.embeddings.parquet").stat().st_mtime_ns
    assert before == after


@pytest.mark.model
def test_training_from_a_folder_of_clips(data_dir: Path, tmp_path: Path) -> None:
    """TRAINSET/<Label>/*: embedded with bdisc's pipeline, then an mlp head by k-fold."""
    trainset = tmp_path / "trainset"
    for folder, label in LABELS.items():
        for path in sorted((data_dir / "discovery" / folder).iterdir()):
            if "cuvi" not in path.name:
                (trainset / label).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, trainset / label / path.name)
    out = tmp_path / "model"
    argv = ["train", str(trainset), "--out", str(out), "--head", "mlp", "--hidden", "32"]
    assert main([*argv, "--folds", "3", "--upsample", "--no-progress"]) == 0
    meta = json.loads((out / MODEL_JSON).read_text())
    assert meta["head"] == {"kind": "mlp", "hidden": 32, "input_dim": 1024}
    assert meta["hyperparameters"]["validation"] == {"folds": 3}
    assert meta["hyperparameters"]["balance"] == "upsample"
    assert meta["embedding"]["overlap_s"] == 0.0
    assert meta["training_set"]["recordings"] == 15
    report = json.loads((out / "metrics.json").read_text())
    assert report["windows"] == sum(meta["training_set"]["windows_per_label"].values())
    assert report["macro_average_precision"] >= 0.8
    assert (out / "clip_embeddings" / "embeddings").is_dir()
    assert (out / CLASSIFIER_PARAMS).read_text().splitlines()[1].startswith("32,")
