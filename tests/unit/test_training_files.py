"""The training package's inputs and files without BirdNET: labels from a results folder
(as export plans them), unreadable sheets and heads, the model folder's hashes, stale
classifier files, and classify's checks of stored embeddings."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from bdisc.cli.classify_cmd import embedding_params, stored_embeddings
from bdisc.discovery.sheets import read_clusters, read_review
from bdisc.errors import ConfigError, IncompatibleArtifact
from bdisc.model.birdnet import MODEL_FILE, MODEL_NAME
from bdisc.pipeline.summary import ERRORS_FILE
from bdisc.training.api import TrainConfig, train
from bdisc.training.classify import ClassifyConfig, classify
from bdisc.training.dataset import TrainingSet
from bdisc.training.fit import FitConfig
from bdisc.training.from_results import from_results
from bdisc.training.head import Dense, Head
from bdisc.training.model_file import (
    HEAD_FILE,
    MODEL_JSON,
    TrainedModel,
    base_model,
    load_model,
    save_model,
)
from bdisc.training.tflite_export import LABELS_FILE, PARAMS_FILE, TFLITE_FILE

from .training_helpers import (
    centred,
    centres,
    fake_model_dir,
    results_folder,
    window,
    write_embeddings,
)

DIM = 4


def _head(classes: int = 2, dim: int = DIM, seed: int = 0) -> Head:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(classes, dim)).astype(np.float32)
    return Head("linear", (Dense(w, np.zeros(classes, dtype=np.float32)),))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return fake_model_dir(tmp_path / "birdnet")


@pytest.fixture
def sha(model_dir: Path) -> str:
    return base_model(model_dir)["sha256"]


def _model(folder: Path, model_dir: Path, **embedding: object) -> TrainedModel:
    base = base_model(model_dir)
    save_model(
        folder,
        _head(),
        ("Hermit", "Piha"),
        {"base_model": base, "embedding": window(base["sha256"], **embedding)},
    )
    return load_model(folder, model_dir)


# -- a results folder's labels (item 9) ---------------------------------------------


def _project(root: Path, sha: str) -> Path:
    """Deployments a and b; a's sheet labels both (b has no sheet of its own), with the
    same cluster numbers in both folders."""
    c = centres(3)
    recordings = {
        "a/r1.wav": (4, c[0]),
        "a/r2.wav": (4, c[2]),
        "b/r3.wav": (4, c[1]),
        "b/r4.wav": (4, c[2]),
    }
    clusters = {"a/r1.wav": 1, "a/r2.wav": 2, "b/r3.wav": 1, "b/r4.wav": 2}
    sheet = [("a", 1, "Piha"), ("a", 2, "Noise"), ("b", 1, "Hermit"), ("b", 2, "")]
    return results_folder(root, sha, recordings, clusters, {"a": sheet})


def _labels(data: TrainingSet) -> dict[tuple[str, float], str]:
    return {
        (str(r), float(s)): label
        for r, s, label in zip(data.recordings, data.starts, data.labels, strict=True)
    }


def test_labels_are_keyed_by_folder_and_cluster(tmp_path: Path, sha: str) -> None:
    results = _project(tmp_path / "results", sha)
    labels = _labels(from_results(results))
    assert {labels[("a/r1.wav", s)] for s in (0.0, 3.0, 6.0, 9.0)} == {"Piha"}
    assert {labels[("b/r3.wav", s)] for s in (0.0, 3.0, 6.0, 9.0)} == {"Hermit"}
    assert {labels[("a/r2.wav", s)] for s in (0.0, 3.0, 6.0, 9.0)} == {"Noise"}
    assert not any(r == "b/r4.wav" for r, _ in labels)  # its cluster is unlabelled


def test_window_labels_win_over_their_clusters(tmp_path: Path, sha: str) -> None:
    results = _project(tmp_path / "results", sha)
    overrides = tmp_path / "window_labels.csv"
    with overrides.open("w", newline="") as f:
        csv.writer(f).writerows(
            [
                ["folder", "file", "start_s", "label"],
                ["b", "r4.wav", "3", "Piha"],  # in an unlabelled cluster
                ["a", "r2.wav", "6", "Hermit"],  # a Noise cluster's window
                ["a", "r1.wav", "0", ""],  # blank: dropped
            ]
        )
    labels = _labels(from_results(results, overrides))
    assert labels[("b/r4.wav", 3.0)] == "Piha"
    assert ("b/r4.wav", 0.0) not in labels
    assert labels[("a/r2.wav", 6.0)] == "Hermit" and labels[("a/r2.wav", 3.0)] == "Noise"
    assert ("a/r1.wav", 0.0) not in labels and labels[("a/r1.wav", 3.0)] == "Piha"


# -- unreadable inputs (item 5) -----------------------------------------------------


def test_unreadable_sheets_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    review = tmp_path / "review.csv"
    review.write_bytes("Folder,Cluster,Label\na,1,Pīha\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"review\.csv"):
        read_review(review)
    clusters = tmp_path / "clusters.csv"
    clusters.write_text(
        "folder,file,start_s,end_s,cluster,probability,umap_x,umap_y,top_label,"
        "top_confidence,type\na,r.wav,zero,3,1,1,0,0,,0,\n"
    )
    with pytest.raises(ConfigError, match=r"clusters\.csv"):
        read_clusters(clusters)


def test_a_corrupt_or_misshapen_head_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "head.npz"
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(IncompatibleArtifact, match=r"head\.npz"):
        Head.load(path)
    np.savez(
        path,
        kind=np.asarray("mlp"),
        layer0_weights=np.zeros((8, 4), np.float32),
        layer0_bias=np.zeros(8, np.float32),
        layer1_weights=np.zeros((2, 5), np.float32),  # takes 5, the hidden layer gives 8
        layer1_bias=np.zeros(2, np.float32),
    )
    with pytest.raises(IncompatibleArtifact, match="inputs"):
        Head.load(path)
    with pytest.raises(ConfigError):
        Head("linear", (Dense(np.zeros((2, 4), np.float32), np.zeros(3, np.float32)),))


def test_model_json_must_be_an_object(tmp_path: Path, model_dir: Path) -> None:
    folder = tmp_path / "model"
    _model(folder, model_dir)
    (folder / MODEL_JSON).write_text("[1, 2]")
    with pytest.raises(ConfigError, match="object"):
        load_model(folder, model_dir)


# -- the model folder's hashes and stale files (items 6, 7) ---------------------------


def test_a_swapped_head_is_refused(tmp_path: Path, model_dir: Path) -> None:
    folder = tmp_path / "model"
    _model(folder, model_dir)
    meta = json.loads((folder / MODEL_JSON).read_text())
    assert len(meta["files"][HEAD_FILE]) == 64
    _head(seed=1).save(folder / HEAD_FILE)  # same shape, other weights
    with pytest.raises(IncompatibleArtifact, match="SHA-256"):
        load_model(folder, model_dir)


def test_a_classifier_file_is_named_only_when_it_is_the_models(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    tflite = folder / TFLITE_FILE
    tflite.write_bytes(b"the exported classifier")
    base = base_model(model_dir)
    meta = {"base_model": base, "embedding": window(base["sha256"])}
    save_model(folder, _head(), ("Hermit", "Piha"), meta, [tflite])
    model = load_model(folder, model_dir)
    assert model.verified_file(TFLITE_FILE) == tflite
    tflite.write_bytes(b"an earlier training's classifier")
    assert model.verified_file(TFLITE_FILE) is None


def _training_results(root: Path, sha: str) -> Path:
    """Three recordings of each of two classes (one named like a log field) and noise."""
    c = centres(3, seed=2)
    names = ["windows", "Piha", "Noise"]
    recordings = {f"d/{n}{i}.wav": (6, c[k]) for k, n in enumerate(names) for i in range(3)}
    clusters = {rel: k + 1 for k, n in enumerate(names) for rel in recordings if f"/{n}" in rel}
    sheet = [("d", k + 1, n) for k, n in enumerate(names)]
    return results_folder(root, sha, recordings, clusters, {"d": sheet})


def test_training_records_hashes_and_removes_stale_exports(
    tmp_path: Path, model_dir: Path, sha: str
) -> None:
    results = _training_results(tmp_path / "results", sha)
    out = tmp_path / "model"
    out.mkdir()
    for name in (TFLITE_FILE, LABELS_FILE, PARAMS_FILE):
        (out / name).write_text("from an earlier training")
    config = TrainConfig(
        results, out, FitConfig(epochs=20), val_fraction=0.4, export=False, model_dir=model_dir
    )
    result = train(config)  # a label named "windows" is no log field's clash
    assert result.classes == ("Piha", "windows")
    for name in (TFLITE_FILE, LABELS_FILE, PARAMS_FILE):
        assert not (out / name).exists(), name
    meta = json.loads((out / MODEL_JSON).read_text())
    assert set(meta["files"]) == {HEAD_FILE}
    assert meta["validation_set"]["recordings"] >= 3
    assert len(meta["validation_set"]["sha256"]) == 64
    assert load_model(out, model_dir).classes == ("Piha", "windows")


def test_training_refuses_embeddings_of_another_model(
    tmp_path: Path, model_dir: Path, sha: str
) -> None:
    results = _training_results(tmp_path / "results", sha)
    other = fake_model_dir(tmp_path / "other")
    (other / MODEL_FILE).write_bytes(b"another model file")
    with pytest.raises(IncompatibleArtifact, match="sha256"):
        train(TrainConfig(results, tmp_path / "m", export=False, model_dir=other))


def test_a_single_fold_is_refused(tmp_path: Path) -> None:
    for folds in (0, 1):
        with pytest.raises(ConfigError, match="folds"):
            TrainConfig(tmp_path, tmp_path, folds=folds)


# -- classify's checks of stored embeddings (items 5, 8) -------------------------------


def _stored(root: Path, sha: str, **changes: object) -> Path:
    rng = np.random.default_rng(0)
    for i in range(2):
        vectors = centred(rng, np.zeros(DIM), 5)
        write_embeddings(root, f"site/r{i}.wav", vectors, window(sha, **changes))
    return root


def test_classify_refuses_embeddings_of_other_audio_settings(
    tmp_path: Path, model_dir: Path, sha: str
) -> None:
    model = _model(tmp_path / "model", model_dir)
    config = ClassifyConfig(tmp_path / "out")
    changed = {
        "bandpass_fmin": 150.0,
        "audio_speed": 0.5,
        "model_precision": "FP16",
        "sample_rate": 32000,
        "window_s": 2.0,
    }
    for key, value in changed.items():
        stored = _stored(tmp_path / key, sha, **{key: value})
        with pytest.raises(IncompatibleArtifact, match=key):
            classify(model, [stored], config)
    with pytest.raises(IncompatibleArtifact, match=MODEL_NAME):
        classify(model, [_stored(tmp_path / "other", "f" * 64)], config)
    # overlap, minimum length and tail windows only decide which windows there are
    stored = _stored(tmp_path / "overlap", sha, overlap_s=1.5, min_len_s=3.0)
    assert classify(model, [stored], config).recordings == 2


def test_classify_lists_an_unreadable_file_and_goes_on(
    tmp_path: Path, model_dir: Path, sha: str, caplog: pytest.LogCaptureFixture
) -> None:
    model = _model(tmp_path / "model", model_dir)
    stored = _stored(tmp_path / "emb", sha)
    bad = stored / "site" / "broken.embeddings.parquet"
    bad.write_bytes(b"PAR1 truncated")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        summary = classify(model, [stored], ClassifyConfig(out))
    assert summary.recordings == 2 and [f[0] for f in summary.failed] == [str(bad)]
    errors = list(csv.DictReader((out / ERRORS_FILE).open()))
    assert [(r["path"], r["severity"]) for r in errors] == [(str(bad), "error")]
    assert (out / "site" / "r0.BirdNET.results.csv").is_file()


def test_audio_is_embedded_as_the_head_was_trained(tmp_path: Path, model_dir: Path) -> None:
    model = _model(
        tmp_path / "model", model_dir, bandpass_fmin=150.0, bandpass_fmax=12000.0, audio_speed=0.5
    )
    params = embedding_params(model, 1.0, 2.0)
    assert (params.bandpass.fmin, params.bandpass.fmax) == (150.0, 12000.0)
    assert (params.audio_speed, params.overlap_s, params.min_len_s) == (0.5, 1.0, 2.0)


def test_a_stray_embeddings_file_does_not_make_audio_stored(tmp_path: Path, sha: str) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "song.wav").write_bytes(b"RIFF")
    write_embeddings(audio, "old.wav", np.zeros((1, DIM), np.float32), window(sha))
    assert stored_embeddings(audio) is None
    only = _stored(tmp_path / "emb", sha)
    assert stored_embeddings(only) == only
