"""Fair to every project, on the real stack (one embedding replica): a project's small
job finishes within twice its time on an idle platform while another project's job of
60 recordings is being embedded, because each project has only a few recordings in
flight (``app/embed_dispatch.py``). Without that, the small job waited behind all 60."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..model.helpers import write_clip
from .stack_helpers import BDISC, running_stack

log = logging.getLogger(__name__)
FLOOD = 60  # recordings of the big job
SMALL = 2  # recordings of the small job


class Project:
    def __init__(self, api: str, key: str) -> None:
        self.api, self.key = api, key
        self.client = httpx.Client(base_url=api, headers={"X-API-Key": key})
        self.name = self.client.get("/v1/me").json()["project"]

    def submit(self, folder: Path) -> str:
        """``bdisc submit`` (uploads, submits, returns); the new job's id."""
        before = self.job_ids()
        done = subprocess.run(
            [BDISC, "submit", str(folder), "--api", self.api, "--api-key", self.key,
             "--min-cluster-size", "2"],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        (job,) = self.job_ids() - before
        return job

    def job_ids(self) -> set[str]:
        jobs = self.client.get(f"/v1/projects/{self.name}/jobs").json()["jobs"]
        return {j["job_id"] for j in jobs}

    def status(self, job: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.get(f"/v1/projects/{self.name}/jobs/{job}").json()
        return answer

    def seconds_to_finish(self, folder: Path) -> float:
        """From the job's submission until it is done (polled every 0.1 s)."""
        job = self.submit(folder)
        started = time.perf_counter()
        while (status := self.status(job))["status"] != "done":
            assert status["status"] == "running" and time.perf_counter() - started < 600, status
            time.sleep(0.1)
        return time.perf_counter() - started


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_a_small_job_is_not_held_back_by_another_projects_flood(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, audio_dir: Path, tmp_path: Path
) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    for n in range(SMALL):
        write_clip(audio_dir / "soundscape.flac", small / "site" / f"s{n}.wav", 30.0)
    for n in range(FLOOD):
        write_clip(audio_dir / "soundscape.flac", big / "site" / f"b{n:02d}.wav", 30.0)
    with running_stack(
        s3_endpoint, rabbit_url, postgres_url, tmp_path / ".stack", embed_replicas=1
    ) as running:
        mine, theirs = (
            Project(running.api, running.key),
            Project(running.api, running.create_project()),
        )
        mine.seconds_to_finish(small)  # warms every service up
        idle_s = mine.seconds_to_finish(small)
        flood = theirs.submit(big)
        deadline = time.monotonic() + 120
        while "embed" not in theirs.status(flood)["progress"]:  # the flood is planned
            assert time.monotonic() < deadline, theirs.status(flood)
            time.sleep(0.2)
        busy_s = mine.seconds_to_finish(small)
        embed = theirs.status(flood)["progress"]["embed"]
        log.info("small job: %.1f s idle, %.1f s beside the flood (%s)", idle_s, busy_s, embed)
        try:
            assert embed.get("pending", 0) > 0, embed  # the flood was still waiting...
            assert busy_s <= 2.0 * idle_s, (idle_s, busy_s, embed)  # ... and did not hold it
        finally:
            theirs.client.post(f"/v1/projects/{theirs.name}/jobs/{flood}:cancel")
