"""The gateway over the real stack (S3, RabbitMQ, PostgreSQL, the gRPC Spectrogram
service), for the gateway's API tests and the review app's browser tests; and the
orchestrator alone on the real broker and database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.spectrogram_client import SpectrogramClient
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.app import stages
from bdisc.app.orchestrator import Orchestrator
from gateway.app import create_app
from gateway.deps import Deps
from spectrogram.grpc_server import serve as serve_tiles

from ..conftest import admin_store


@pytest.fixture
def gateway(
    s3_endpoint: str, rabbit_url: str, postgres_url: str
) -> Iterator[tuple[TestClient, Deps, dict[str, str]]]:
    migrate(postgres_url)
    jobs = SqlJobStore(postgres_url)
    objects = admin_store(s3_endpoint, f"gw-{uuid.uuid4().hex[:10]}")
    tile_server, port = serve_tiles(objects, 0)  # the gRPC Spectrogram service
    bus = RabbitBus(rabbit_url, backoff_s=0.05)
    for stage in stages.PREFETCH:  # every stage's queue
        bus.purge(stage)
    deps = Deps(
        objects,
        jobs,
        SqlProjectStore(jobs.engine),
        bus,
        SqlLabelStore(jobs.engine),
        max_upload_bytes=3 << 20,
        ready_checks={"object_store": lambda: objects.exists("x")},
        tiles=SpectrogramClient(f"127.0.0.1:{port}"),
    )
    keys = {}
    for name in ("alpha", "beta"):
        project = f"{name}-{uuid.uuid4().hex[:6]}"
        keys[name] = project
        keys[f"{name}-key"] = deps.projects.create(project)[1]
    yield TestClient(create_app(deps)), deps, keys
    bus.close()
    tile_server.stop(grace=1)


def orchestrator_on(
    rabbit_url: str, postgres_url: str, tmp_path: Path, **options: Any
) -> tuple[RabbitBus, SqlJobStore, Orchestrator]:
    """An orchestrator on the real broker (every stage's queue purged, events taken 32
    at a time) and the migrated database; ``options`` go to the Orchestrator."""
    migrate(postgres_url)
    jobs = SqlJobStore(postgres_url)
    bus = RabbitBus(rabbit_url, prefetch=stages.PREFETCH[stages.EVENTS], backoff_s=0.05)
    for stage in stages.PREFETCH:
        bus.purge(stage)
    labels = SqlLabelStore(jobs.engine)
    return bus, jobs, Orchestrator(jobs, bus, LocalStore(tmp_path), labels=labels, **options)
