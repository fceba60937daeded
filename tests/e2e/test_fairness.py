"""Fair to every project, on the real stack (one embedding replica): a project's small
job finishes within twice its time on an idle platform while another project's job of
60 recordings is being embedded, because each project has only a few recordings in
flight (``app/embed_dispatch.py``). Without that, the small job waited behind all 60."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ..model.helpers import write_clip
from .stack_helpers import BDISC, running_stack

log = logging.getLogger(__name__)
FLOOD = 60  # recordings of the big job
SMALL = 2  # recordings of the small job


def submit(folder: Path, api: str, key: str, *extra: str) -> float:
    """``bdisc submit`` (with ``--wait``: until its results are downloaded); seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [BDISC, "submit", str(folder), "--api", api, "--api-key", key, *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
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
        wait = ["--wait", "--min-cluster-size", "2"]
        submit(small, running.api, running.key, *wait, "--out", str(tmp_path / "warm"))
        idle_s = submit(small, running.api, running.key, *wait, "--out", str(tmp_path / "idle"))

        big_key = running.create_project()
        submit(big, running.api, big_key)  # uploaded and submitted; not waited for
        api = httpx.Client(base_url=running.api, headers={"X-API-Key": big_key})
        project = api.get("/v1/me").json()["project"]
        (job,) = api.get(f"/v1/projects/{project}/jobs").json()["jobs"]
        url = f"/v1/projects/{project}/jobs/{job['job_id']}"
        deadline = time.monotonic() + 120
        while "embed" not in api.get(url).json()["progress"]:  # the flood is planned
            assert time.monotonic() < deadline, api.get(url).json()
            time.sleep(0.2)

        flood_s = submit(small, running.api, running.key, *wait, "--out", str(tmp_path / "busy"))
        embed = api.get(url).json()["progress"]["embed"]
        log.info("small job: %.1f s idle, %.1f s beside the flood (%s)", idle_s, flood_s, embed)
        try:
            assert embed.get("pending", 0) > 0, embed  # the flood was still waiting...
            assert flood_s <= 2.0 * idle_s, (idle_s, flood_s, embed)  # ... and did not hold it
        finally:
            api.post(f"{url}:cancel")
