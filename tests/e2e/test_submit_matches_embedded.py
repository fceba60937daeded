"""`bdisc submit` against the running stack (gateway, orchestrator, 2 embedding replicas,
clustering) gives the same review outputs as the embedded `bdisc discover` on the same
recordings with the same seed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app import stages
from bdisc.service.local_stack import DEFAULT_ENV, Stack, wait_for

BDISC = str(Path(sys.executable).parent / "bdisc")
PORT = 18765


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_submit_gives_what_discover_gives(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, data_dir: Path, tmp_path: Path
) -> None:
    env = {
        **DEFAULT_ENV,
        "BDISC_RABBITMQ_URL": rabbit_url,
        "BDISC_S3_ENDPOINT": s3_endpoint,
        "BDISC_S3_BUCKET": f"submit-{uuid.uuid4().hex[:10]}",
        "BDISC_DATABASE_URL": postgres_url,
        "BDISC_PORT": str(PORT),
    }
    bus = RabbitBus(rabbit_url)
    for stage in (stages.EMBED, stages.EVENTS, stages.CLUSTER):
        bus.purge(stage)
    bus.close()
    stack = Stack(tmp_path / ".stack", env)
    full_env = {**os.environ, **env}
    try:
        stack.start_services(embed_replicas=2, metrics_base=19200)
        assert wait_for(PORT, 60), (tmp_path / ".stack/logs/gateway.log").read_text()[-2000:]
        created = subprocess.run(
            [sys.executable, "-m", "gateway", "create-project", "field-team"],
            env=full_env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = next(
            line.split()[-1] for line in created.stdout.splitlines() if line.startswith("api key")
        )
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
    finally:
        stack.down()
