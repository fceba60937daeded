"""`bdisc submit` against the running stack (gateway, orchestrator, ingestion, 2 embedding
replicas, clustering, export, evaluation) gives the same review outputs as the embedded
`bdisc discover` on the same recordings with the same seed; labels set through the API
export the same training clips as `bdisc export`; an evaluation job runs to its report."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devstack.stack import SERVICES

from .stack_helpers import BDISC, running_stack

PORT = 18765


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
    with running_stack(
        s3_endpoint, rabbit_url, postgres_url, tmp_path / ".stack", PORT, 19200
    ) as running:
        key = running.key
        remote, local = tmp_path / "remote", tmp_path / "local"
        done = subprocess.run(
            [
                BDISC,
                "submit",
                str(data_dir / "demo"),
                "--api",
                f"http://127.0.0.1:{PORT}",
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
                f"http://127.0.0.1:{PORT}",
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
        for port in (19200 + len(SERVICES), 19201 + len(SERVICES)):  # embedding-1, -2
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            windows += sum(
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("bdisc_windows_total ")
            )
            assert 'bdisc_queue_messages{stage="embed"}' in text
        assert windows >= 40 + 3 + 3 + 15  # the four demo recordings, at least once each

        # Review through the API, export on the stack; the embedded export of the same
        # labels gives the same clips, byte for byte.
        api = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"X-API-Key": key})
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
