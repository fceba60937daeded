"""A long recording through the real stack: planned as 10-minute parts that the two
embedding replicas share, each read from S3 by ranges, and clustered to the same review
outputs as `bdisc discover` on the same file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from .stack_helpers import BDISC, running_stack


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_a_long_recording_in_parts_gives_what_discover_gives(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, audio_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    (root / "ridge").mkdir(parents=True)
    audio, rate = sf.read(audio_dir / "soundscape.flac", dtype="float32")
    sf.write(root / "ridge" / "night.flac", np.tile(audio, 8)[: 16 * 60 * rate], rate)
    with running_stack(s3_endpoint, rabbit_url, postgres_url, tmp_path / ".stack") as running:
        remote, local = tmp_path / "remote", tmp_path / "local"
        options = ["--min-cluster-size", "3"]
        server = ["--api", running.api, "--api-key", running.key]
        done = subprocess.run(
            [BDISC, "submit", str(root), *server, "--wait", "--out", str(remote), *options],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        api = httpx.Client(base_url=running.api, headers={"X-API-Key": running.key})
        project = api.get("/v1/me").json()["project"]
        (job,) = [j for j in api.get(f"/v1/projects/{project}/jobs").json()["jobs"]]
        status = api.get(f"/v1/projects/{project}/jobs/{job['job_id']}").json()
        assert status["progress"]["embed"] == {"done": 2}  # two parts: 0-10 and 10-16 min
        subprocess.run(
            [BDISC, "discover", str(root), "--out", str(local), *options, "--no-progress"],
            check=True,
            capture_output=True,
            timeout=600,
        )
        for name in ("clusters.csv", "review.csv"):
            mine = (local / "ridge" / name).read_text()
            assert (remote / "ridge" / name).read_text() == mine, name
        assert len((local / "ridge" / "clusters.csv").read_text().splitlines()) == 1 + 640
