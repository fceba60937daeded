"""The real stack for end-to-end tests: every service started from the working tree on
the session's RabbitMQ, SeaweedFS and PostgreSQL, with a project and its API key."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app import stages
from devstack.stack import DEFAULT_ENV, Stack, wait_for

BDISC = str(Path(sys.executable).parent / "bdisc")


@dataclass(frozen=True)
class RunningStack:
    stack: Stack
    api: str  # the gateway's URL
    key: str  # the project's API key


@contextmanager
def running_stack(
    s3_endpoint: str,
    rabbit_url: str,
    postgres_url: str,
    folder: Path,
    port: int,
    metrics_base: int,
    embed_replicas: int = 2,
) -> Iterator[RunningStack]:
    env = {
        **DEFAULT_ENV,
        "BDISC_RABBITMQ_URL": rabbit_url,
        "BDISC_S3_ENDPOINT": s3_endpoint,
        "BDISC_S3_BUCKET": f"e2e-{uuid.uuid4().hex[:10]}",
        "BDISC_DATABASE_URL": postgres_url,
        "BDISC_PORT": str(port),
    }
    bus = RabbitBus(rabbit_url)
    for stage in stages.PREFETCH:  # every stage's queue
        bus.purge(stage)
    bus.close()
    stack = Stack(folder, env)
    try:
        stack.start_services(embed_replicas=embed_replicas, metrics_base=metrics_base)
        assert wait_for(port, 60), (folder / "logs/gateway.log").read_text()[-2000:]
        created = subprocess.run(
            # a project of its own: the tests share one database
            [sys.executable, "-m", "gateway", "create-project", f"field-{uuid.uuid4().hex[:8]}"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        key = next(
            line.split()[-1] for line in created.stdout.splitlines() if line.startswith("api key")
        )
        yield RunningStack(stack, f"http://127.0.0.1:{port}", key)
    finally:
        stack.down()
