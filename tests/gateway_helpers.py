"""Driving the gateway in tests: uploads, and the stages of a submitted job run
in-process on the real queues, in the order the services would."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bdisc.app import stages
from bdisc.app.cluster_stage import ClusterStage
from bdisc.app.embed_stage import EmbedStage
from bdisc.app.ingest_stage import IngestStage
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.stage_handler import stage_handler
from bdisc.model.birdnet import BirdNetV24
from gateway.deps import Deps


def upload(client: TestClient, project: str, key: str, path: str, data: bytes) -> int:
    response = client.post(
        f"/v1/projects/{project}/audio",
        params={"path": path},
        files={"file": ("x", io.BytesIO(data))},
        headers={"X-API-Key": key},
    )
    return response.status_code


def run_discovery(deps: Deps, model: BirdNetV24) -> Orchestrator:
    """Deliver the submitted discovery jobs' messages through every stage (in-process
    consumers of the real queues), in the order the services would."""
    orchestrator = Orchestrator(deps.jobs, deps.bus, deps.objects, labels=deps.labels)
    handlers = {
        stages.EVENTS: orchestrator.handle_event,
        stages.INGEST: stage_handler(deps.bus, IngestStage(deps.objects).routes),
        stages.EMBED: stage_handler(deps.bus, EmbedStage(model, deps.objects).routes),
        stages.CLUSTER: stage_handler(deps.bus, ClusterStage(deps.objects).routes),
    }
    # Rounds until nothing moves: a project's recordings go out a few at a time (fair
    # dispatch), and the last round links the sound types of every deployment.
    order = (stages.EVENTS, stages.INGEST, stages.EVENTS, stages.EMBED, stages.EVENTS)
    while sum(
        deps.bus.consume(stage, handlers[stage], idle_timeout_s=0.5)
        for stage in (*order, stages.CLUSTER, stages.EVENTS)
    ):
        pass
    return orchestrator


@contextlib.contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """An app on a free port of 127.0.0.1 (a browser needs a real server); its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the app did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
