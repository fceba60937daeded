"""`bdisc submit` against the running stack (gateway, orchestrator, ingestion, 2 embedding
replicas, clustering, export, evaluation, training) gives the same review outputs as the embedded
`bdisc discover` on the same recordings with the same seed; labels set through the API
export the same training clips as `bdisc export`; an evaluation job runs to its report;
the training service trains the head `bdisc train` trains on the same labels, and its
detections and search matches are those of `bdisc classify` and `bdisc search`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from bdisc.discovery.labelled_sheet import with_labels
from devstack.stack import SERVICES

from .stack_helpers import BDISC, running_stack


def wait_job(api: httpx.Client, project: str, job: str, timeout_s: float = 300) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = api.get(f"/v1/projects/{project}/jobs/{job}")
        if found.status_code == 200 and found.json()["status"] in ("done", "failed", "cancelled"):
            return str(found.json()["status"])
        time.sleep(0.5)
    raise AssertionError(f"job {job} did not end in {timeout_s} s")


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_submit_gives_what_discover_gives(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, data_dir: Path, tmp_path: Path
) -> None:
    # every service as its own RabbitMQ user, consumers checking senders (as deployed)
    stacked = running_stack(
        s3_endpoint, rabbit_url, postgres_url, tmp_path / ".stack", own_bus_users=True
    )
    with stacked as running:
        key = running.key
        remote, local = tmp_path / "remote", tmp_path / "local"
        done = subprocess.run(
            [
                BDISC,
                "submit",
                str(data_dir / "demo"),
                "--api",
                running.api,
                "--api-key",
                key,
                "--wait",
                "--out",
                str(remote),
                "--min-cluster-size",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        subprocess.run(
            [
                BDISC,
                "discover",
                str(data_dir / "demo"),
                "--out",
                str(local),
                "--min-cluster-size",
                "3",
                "--no-progress",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        for site in ("site_a", "site_b"):
            for name in ("clusters.csv", "review.csv"):
                assert (remote / site / name).read_text() == (local / site / name).read_text(), (
                    site,
                    name,
                )
            montages = sorted(p.name for p in (remote / site / "montages").glob("*.png"))
            assert montages == sorted(p.name for p in (local / site / "montages").glob("*.png"))
            assert (remote / site / "index.html").is_file()
        # Submitting again uploads nothing: the project already has every recording.
        again = subprocess.run(
            [
                BDISC,
                "submit",
                str(data_dir / "demo"),
                "--api",
                running.api,
                "--api-key",
                key,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0 and "0 uploaded, 4 already there" in again.stderr

        # Every replica's /metrics: windows through the model, its queue's depth.
        windows = 0.0
        first_replica = running.ports.metrics_base + len(SERVICES)
        for port in (first_replica, first_replica + 1):  # embedding-1, -2
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            windows += sum(
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("bdisc_windows_total ")
            )
            assert 'bdisc_queue_messages{stage="embed"}' in text
        assert windows >= 40 + 3 + 3 + 15  # the four demo recordings, at least once each
        # Each service was connected as its own RabbitMQ user.
        connected = subprocess.run(
            ["rabbitmqctl", "list_connections", "user", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        for service in ("gateway", "orchestrator", "ingestion", "embedding", "clustering"):
            url = running.stack.service_env[service]["BDISC_RABBITMQ_URL"]
            assert url.split("//", 1)[1].split(":", 1)[0] in connected, service
        # The gateway's metrics are on its metrics port, not on the public API's.
        gateway_metrics = running.ports.metrics_base + SERVICES.index("gateway")
        text = httpx.get(f"http://127.0.0.1:{gateway_metrics}/metrics").text
        assert 'route="/v1/projects/{project}/jobs/{job_id}",status="200"' in text
        assert httpx.get(f"{running.api}/metrics").status_code == 404

        # Review through the API, export on the stack; the embedded export of the same
        # labels gives the same clips, byte for byte.
        api = httpx.Client(base_url=running.api, headers={"X-API-Key": key})
        project = api.get("/v1/me").json()["project"]
        listed = api.get(f"/v1/projects/{project}/jobs").json()["jobs"]
        job = next(j["job_id"] for j in listed if j["kind"] == "discover")  # the --wait one
        base = f"/v1/projects/{project}/jobs/{job}"
        sheet = api.get(f"{base}/review/site_a").json()
        labels = [{"Folder": "site_a", "Cluster": int(sheet[0]["Cluster"]), "Label": "call"}]
        assert api.put(f"{base}/review/site_a", json=labels).status_code == 200
        exported = api.post(f"{base}/export", json={}).json()["job_id"]
        assert wait_job(api, project, exported) == "done"
        clips = api.get(f"{base}/clips").json()["clips"]
        review = tmp_path / "review.csv"
        review.write_text(f"Folder,Cluster,Label\nsite_a,{labels[0]['Cluster']},call\n")
        subprocess.run(
            [
                BDISC,
                "export",
                "--review",
                str(review),
                "--results",
                str(local),
                "--out",
                str(tmp_path / "trainset"),
            ],
            check=True,
            capture_output=True,
        )
        local_clips = sorted(
            p.relative_to(tmp_path / "trainset").as_posix()
            for p in (tmp_path / "trainset").rglob("*.wav")
        )
        assert sorted(c["clip"] for c in clips) == local_clips and local_clips
        for c in clips[:3]:
            assert httpx.get(c["url"]).content == (tmp_path / "trainset" / c["clip"]).read_bytes()

        # An evaluation job on the stack: the paper's per-file table scored against itself.
        table = data_dir / "evaluation" / "base_bnet_labels_CHECKED_300_performance_data.csv"
        upload = api.post(
            f"/v1/projects/{project}/files",
            params={"path": "paper/performance.csv"},
            files={"file": ("f", table.read_bytes())},
        )
        assert upload.status_code == 201
        evaluation = api.post(
            f"/v1/projects/{project}/evaluations",
            json={"detections": "paper/performance.csv", "truth": "paper/performance.csv"},
        ).json()["job_id"]
        assert wait_job(api, project, evaluation) == "done"
        results = api.get(f"/v1/projects/{project}/jobs/{evaluation}/results").json()["files"]
        assert "evaluation/report.md" in results

        # The classifier loop on the stack's training service gives what the CLI gives
        # on the embedded results with the same labels: the same training set and head,
        # the same detections, the same search matches.
        check_training_matches_cli(api, project, job, local, tmp_path)


def _cli(*args: str) -> None:
    subprocess.run([BDISC, *args], check=True, capture_output=True, timeout=300)


def _rows(text: str, drop: str = "") -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    if drop and rows and drop in rows[0]:
        at = rows[0].index(drop)
        rows = [r[:at] + r[at + 1 :] for r in rows]
    return rows


def check_training_matches_cli(
    api: httpx.Client, project: str, job: str, local: Path, tmp_path: Path
) -> None:
    base = f"/v1/projects/{project}/jobs/{job}"
    for site, names in (("site_a", ["call_a", "call_b"]), ("site_b", ["Noise"])):
        clusters = [int(r["Cluster"]) for r in api.get(f"{base}/review/{site}").json()]
        chosen = dict(zip([c for c in clusters if c >= 0], names, strict=False))
        # every cluster: the export's label above is taken off again
        body = [{"Folder": site, "Cluster": c, "Label": chosen.get(c, "")} for c in clusters]
        assert api.put(f"{base}/review/{site}", json=body).status_code == 200
        sheet = local / site / "review.csv"
        sheet.write_text(with_labels(sheet.read_text(), chosen))
    created = api.post(
        f"/v1/projects/{project}/models",
        json={"discovery_job": job, "seed": 0, "val_fraction": 0.5},
    )
    assert created.status_code == 202, created.text
    model_id = created.json()["model_id"]
    assert wait_job(api, project, model_id) == "done", api.get(f"{base}").json()
    model = api.get(f"/v1/projects/{project}/models/{model_id}").json()
    assert model["status"] == "done" and model["classes"] == ["call_a", "call_b"]
    cli_model = tmp_path / "model"
    _cli("train", str(local), "--out", str(cli_model), "--seed", "0", "--val-fraction", "0.5")
    remote_meta = json.loads(httpx.get(model["files"]["model.json"]).content)
    local_meta = json.loads((cli_model / "model.json").read_text())
    assert remote_meta["training_set"]["sha256"] == local_meta["training_set"]["sha256"]
    assert (
        remote_meta["training_set"]["windows_per_label"]
        == (local_meta["training_set"]["windows_per_label"])
    )
    (tmp_path / "remote_head.npz").write_bytes(httpx.get(model["files"]["head.npz"]).content)
    with np.load(tmp_path / "remote_head.npz") as r, np.load(cli_model / "head.npz") as c:
        assert sorted(r.files) == sorted(c.files)
        for name in r.files:
            if r[name].dtype.kind == "f":
                np.testing.assert_allclose(r[name], c[name], rtol=1e-6, atol=1e-7)
            else:
                assert np.array_equal(r[name], c[name]), name
    assert httpx.get(model["files"]["CustomClassifier.tflite"]).content == (
        (cli_model / "CustomClassifier.tflite").read_bytes()
    )

    # Classify the stored windows: the same detections per recording (the File column
    # names where each side read the audio).
    asked = api.post(f"{base}/classify", json={"model_id": model_id, "min_conf": 0.1})
    classified = asked.json()["job_id"]
    assert wait_job(api, project, classified) == "done"
    files = api.get(f"/v1/projects/{project}/jobs/{classified}/results").json()["files"]
    out = str(tmp_path / "classified")
    _cli("classify", str(local), "--model", str(cli_model), "--out", out, "--min-conf", "0.1")
    tables = sorted(n for n in files if n.endswith(".BirdNET.results.csv"))
    assert len(tables) == 4
    for name in tables:
        remote_table = httpx.get(files[name]).text
        local_table = (tmp_path / "classified" / name).read_text()
        assert _rows(remote_table, "File") == _rows(local_table, "File"), name

    # Search by example: the same matches, in the same order, at the same distances.
    sheet = _rows((local / "site_a" / "clusters.csv").read_text())
    header, first = sheet[0], sheet[1]
    recording = f"site_a/{first[header.index('file')]}"
    start = float(first[header.index("start_s")])
    searched = api.post(
        f"/v1/projects/{project}/search",
        json={"discovery_job": job, "window": {"recording": recording, "start_s": start}},
    ).json()
    assert wait_job(api, project, searched["job_id"]) == "done"
    results = api.get(f"{base}/results").json()["files"]
    remote_matches = _rows(httpx.get(results[f"{searched['folder']}/matches.csv"]).text)
    out = str(tmp_path / "search")
    _cli("search", "--results", str(local), "--window", recording, str(start), "--out", out)
    local_matches = _rows((tmp_path / "search" / "matches.csv").read_text())
    assert len(remote_matches) > 5 and remote_matches[1][2] == recording
    assert [r[2:] for r in remote_matches] == [r[2:] for r in local_matches]
    for r, c in zip(remote_matches[1:], local_matches[1:], strict=True):
        assert abs(float(r[1]) - float(c[1])) < 1e-4
