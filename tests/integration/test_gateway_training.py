"""The classifier loop through the gateway over real S3, RabbitMQ and PostgreSQL: real
recordings discovered and labelled, a model trained from the labels (metrics, the custom
classifier downloadable), then classify, search, duplicates and suggest on the discovery
job's stored windows; the stages run in-process on the same queues."""

from __future__ import annotations

import csv
import io
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bdisc.app import stages
from bdisc.app.stage_handler import stage_handler
from bdisc.app.training_stage import TrainingStage
from bdisc.model.birdnet import BirdNetV24
from gateway.deps import Deps

from ..gateway_helpers import run_discovery, upload

# A small real data set: two recordings per labelled deployment (a model needs recordings
# of each class on both sides of its validation split), and a deployment nobody reviewed
# yet (suggestions come from unlabelled windows).
RECORDINGS = {
    "piha_site": ("ScreamingPiha1.mp3", "ScreamingPiha4.mp3"),
    "hermit_site": ("Phae.cuvi.wav", "lbh1.wav"),
    "noise": ("pst_cafe.flac", "pst_fridge.flac"),
    "unreviewed": ("ScreamingPiha9.mp3",),
}
LABELS = {"piha_site": "Screaming Piha", "hermit_site": "Long-billed Hermit", "noise": "Noise"}
SOURCES = {"unreviewed": "piha_site"}  # where a deployment's recordings are in tests/data


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        data: bytes = response.read()
    return data


@pytest.mark.integration
def test_model_trained_from_labels_then_classify_search_duplicates_suggest(
    gateway: tuple[TestClient, Deps, dict[str, str]], model: BirdNetV24, data_dir: Path
) -> None:
    client, deps, k = gateway
    a, key = k["alpha"], k["alpha-key"]
    auth = {"X-API-Key": key}
    base = f"/v1/projects/{a}"
    for folder, names in RECORDINGS.items():
        for name in names:
            data = (data_dir / "discovery" / SOURCES.get(folder, folder) / name).read_bytes()
            assert upload(client, a, key, f"{folder}/{name}", data) == 201
    created = client.post(f"{base}/jobs", headers=auth, json={"cluster": {"min_cluster_size": 2}})
    assert created.status_code == 202
    job = created.json()["job_id"]
    orchestrator = run_discovery(deps, model)
    assert client.get(f"{base}/jobs/{job}", headers=auth).json()["status"] == "done"

    for folder, label in LABELS.items():
        sheet = client.get(f"{base}/jobs/{job}/review/{folder}", headers=auth).json()
        rows = [{"Folder": folder, "Cluster": int(r["Cluster"]), "Label": label} for r in sheet]
        put = client.put(f"{base}/jobs/{job}/review/{folder}", headers=auth, json=rows)
        assert put.status_code == 200, put.text

    trainer = stage_handler(deps.bus, TrainingStage(deps.objects).routes)

    def deliver() -> None:
        for stage, handler in (
            (stages.EVENTS, orchestrator.handle_event),
            (stages.TRAIN, trainer),
            (stages.EVENTS, orchestrator.handle_event),
        ):
            deps.bus.consume(stage, handler, idle_timeout_s=1.0)

    def finished(job_id: str) -> dict[str, Any]:
        deliver()
        answer: dict[str, Any] = client.get(f"{base}/jobs/{job_id}", headers=auth).json()
        assert answer["status"] == "done", answer
        return answer

    # Train: the model's id is its training job's.
    submitted = client.post(
        f"{base}/models", headers=auth, json={"discovery_job": job, "epochs": 40}
    )
    assert submitted.status_code == 202, submitted.text
    model_id = submitted.json()["model_id"]
    assert submitted.json() == {"model_id": model_id, "job_id": model_id, "status": "submitted"}
    queued = client.get(f"{base}/models/{model_id}", headers=auth).json()
    assert queued["status"] == "queued" and queued["discovery_job"] == job
    assert "files" in queued and queued["files"] == {}
    early = client.post(f"{base}/jobs/{job}/classify", headers=auth, json={"model_id": model_id})
    assert early.status_code == 409 and "not trained" in early.json()["message"]
    finished(model_id)
    trained = client.get(f"{base}/models/{model_id}", headers=auth, params={"expires_s": 600})
    assert trained.status_code == 200, trained.text
    info = trained.json()
    assert info["status"] == "done" and info["options"]["epochs"] == 40
    assert sorted(info["classes"]) == ["Long-billed Hermit", "Screaming Piha"]  # Noise: negative
    assert info["metrics"]["summary"]["windows"] > 0
    assert {c["label"] for c in info["metrics"]["classes"]} == set(info["classes"])
    counts = info["training_set"]["windows_per_label"]
    assert set(counts) == {"Long-billed Hermit", "Screaming Piha", "Noise"}
    assert info["training_set"]["recordings"] == 6
    assert {
        "model.json",
        "head.npz",
        "metrics.json",
        "metrics.csv",
        "confusion.csv",
        "CustomClassifier.tflite",
        "CustomClassifier_Labels.txt",
        "CustomClassifier_Params.csv",
    } <= set(info["files"])
    assert len(_download(info["files"]["CustomClassifier.tflite"])) > 0
    labels_txt = _download(info["files"]["CustomClassifier_Labels.txt"]).decode()
    assert set(labels_txt.split()) >= {"Screaming", "Piha"}
    listed = client.get(f"{base}/models", headers=auth).json()["models"]
    assert [(m["model_id"], m["status"], m["discovery_job"]) for m in listed] == [
        (model_id, "done", job)
    ]

    # Classify the discovery job's stored windows with it: detections per recording.
    classify = client.post(
        f"{base}/jobs/{job}/classify", headers=auth, json={"model_id": model_id, "min_conf": 0.1}
    )
    assert classify.status_code == 202, classify.text
    classify_job = classify.json()["job_id"]
    assert classify.json()["results"] == f"{base}/jobs/{classify_job}/results"
    finished(classify_job)
    detections = client.get(classify.json()["results"], headers=auth).json()["files"]
    for folder, names in RECORDINGS.items():
        for name in names:
            stem = name.rsplit(".", 1)[0]
            assert any(f.startswith(f"{folder}/{stem}") for f in detections), (name, detections)

    # Search by a stored window: the first window of a piha cluster.
    results = client.get(f"{base}/jobs/{job}/results", headers=auth).json()["files"]
    clusters = list(
        csv.DictReader(io.StringIO(_download(results["piha_site/clusters.csv"]).decode()))
    )
    window = {
        "recording": f"{clusters[0]['folder']}/{clusters[0]['file']}",
        "start_s": float(clusters[0]["start_s"]),
    }
    search = client.post(
        f"{base}/search", headers=auth, json={"discovery_job": job, "window": window, "top": 5}
    )
    assert search.status_code == 202, search.text
    found = search.json()
    folder = f"search-{found['job_id']}"
    assert found["folder"] == folder
    assert found["review"] == f"{base}/jobs/{job}/review/{folder}"
    assert found["matches"] == f"{base}/jobs/{job}/results"
    finished(found["job_id"])
    sheet = client.get(found["review"], headers=auth).json()
    assert [int(r["Cluster"]) for r in sheet] == [1]  # one cluster: the matches
    put = client.put(
        found["review"],
        headers=auth,
        json=[{"Folder": folder, "Cluster": 1, "Label": "Screaming Piha"}],
    )
    assert put.status_code == 200 and put.json() == {"labelled": 1}
    results = client.get(found["matches"], headers=auth).json()["files"]
    assert {f"{folder}/matches.csv", f"{folder}/montage.png"} <= set(results)
    matches = list(
        csv.DictReader(io.StringIO(_download(results[f"{folder}/matches.csv"]).decode()))
    )
    assert 1 <= len(matches) <= 5 and matches[0]["recording"] == window["recording"]

    # Duplicates (the defaults, from an empty body): done, its files among its results.
    dup = client.post(f"{base}/jobs/{job}/duplicates", headers=auth)
    assert dup.status_code == 202, dup.text
    finished(dup.json()["job_id"])
    dup_files = client.get(dup.json()["results"], headers=auth).json()["files"]
    assert "duplicates.csv" in dup_files
    # A discovery job may leave the copies of a duplicates job out, not of another job.
    dup_id = dup.json()["job_id"]
    again = client.post(f"{base}/jobs", headers=auth, json={"exclude_duplicates": dup_id})
    assert again.status_code == 202, again.text
    for wrong in (job, "0" * 32):
        refused = client.post(f"{base}/jobs", headers=auth, json={"exclude_duplicates": wrong})
        assert refused.status_code == 404 and "no duplicates job" in refused.json()["message"]

    # Suggest: a review group of five windows, one per row.
    sug = client.post(
        f"{base}/jobs/{job}/suggest", headers=auth, json={"model_id": model_id, "n": 5}
    )
    assert sug.status_code == 202, sug.text
    assert sug.json()["folder"] == f"suggest-{sug.json()['job_id']}"
    assert sug.json()["review"] == f"{base}/jobs/{job}/review/{sug.json()['folder']}"
    finished(sug.json()["job_id"])
    rows = client.get(sug.json()["review"], headers=auth).json()
    assert sorted(int(r["Cluster"]) for r in rows) == [1, 2, 3, 4, 5]  # a window each
    assert {r["Folder"] for r in rows} == {sug.json()["folder"]}
    # The review app lists both groups after the deployments, and labels them as data.
    listed = client.get(f"{base}/jobs/{job}/deployments", headers=auth).json()["deployments"]
    names = [d["folder"] for d in listed]
    assert names[-2:] == [folder, sug.json()["folder"]] and "piha_site" in names
    read = client.get(
        f"{base}/jobs/{job}/labels", headers=auth, params={"folder": sug.json()["folder"]}
    )
    assert read.status_code == 200 and read.json()["labels"] == []
    window_label = client.patch(
        f"{base}/jobs/{job}/labels",
        headers={**auth, "If-Match": read.headers["ETag"]},
        params={"folder": sug.json()["folder"]},
        json={"changes": [{"target": "cluster:2", "label": "Long-billed Hermit"}]},
    )
    assert window_label.status_code == 200, window_label.text
    history = client.get(
        f"{base}/jobs/{job}/labels/history", headers=auth, params={"folder": folder}
    ).json()["changes"]
    assert [h["label"] for h in history] == ["Screaming Piha"]

    # Refusals.
    unknown = "0" * 32
    for path, body in (
        (f"{base}/jobs/{job}/classify", {"model_id": unknown}),
        (f"{base}/jobs/{job}/suggest", {"model_id": unknown}),
        (f"{base}/jobs/{job}/classify", {"model_id": classify_job}),  # not a training job
    ):
        refused = client.post(path, headers=auth, json=body)
        assert refused.status_code == 404 and "no model" in refused.json()["message"]
    assert client.get(f"{base}/models/{unknown}", headers=auth).status_code == 404
    assert client.get(f"{base}/models/{job}", headers=auth).status_code == 404  # a discovery
    assert client.get(f"{base}/models/x%00y", headers=auth).status_code == 404  # no job id
    both = client.post(
        f"{base}/search",
        headers=auth,
        json={"discovery_job": job, "window": window, "example": {"path": "files/x.wav"}},
    )
    assert both.status_code == 422 and "one example" in both.text
    bad = client.post(f"{base}/models", headers=auth, json={"discovery_job": job, "head": "svm"})
    assert bad.status_code == 422 and "head" in bad.text
    not_discovery = client.post(f"{base}/models", headers=auth, json={"discovery_job": model_id})
    assert not_discovery.status_code == 404
    assert client.post(f"{base}/jobs/{model_id}/duplicates", headers=auth).status_code == 404
    # Another project's discovery job is unknown to this project, in the path or the body.
    b, other = k["beta"], {"X-API-Key": k["beta-key"]}
    for path, body in (
        (f"/v1/projects/{b}/models", {"discovery_job": job}),
        (f"/v1/projects/{b}/search", {"discovery_job": job, "window": window}),
        (f"/v1/projects/{b}/jobs/{job}/classify", {"model_id": model_id}),
        (f"/v1/projects/{b}/jobs/{job}/duplicates", {}),
    ):
        assert client.post(path, headers=other, json=body).status_code == 404, path
    assert client.get(f"/v1/projects/{b}/models/{model_id}", headers=other).status_code == 404
    assert client.get(f"/v1/projects/{b}/models", headers=other).json() == {"models": []}
