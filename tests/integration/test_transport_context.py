"""What the transports add around a handler, on the real broker and a real gRPC server:
the job id in every log line (from the AMQP ``job_id`` header, from gRPC ``x-job-id``
metadata), and the per-stage prefetch (work one at a time, events in batches)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app import stages
from bdisc.logs import make_handler
from bdisc.ports.message_bus import Message
from bdisc.v1 import spectrogram_pb2, spectrogram_pb2_grpc
from spectrogram.grpc_server import serve


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """bdisc's log lines, as the services write them (JSON)."""
    stream = io.StringIO()
    handler = make_handler(stream, "json")
    root = logging.getLogger("bdisc")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.integration
def test_amqp_job_id_reaches_every_log_line(rabbit_url: str, json_log: io.StringIO) -> None:
    stage = f"test-{uuid.uuid4().hex[:8]}"
    bus = RabbitBus(rabbit_url)
    bus.publish(Message(stage, "job-from-header", "k1", {}))
    worker_log = logging.getLogger("bdisc.test.worker")

    def handler(message: Message) -> None:
        worker_log.info("deep inside the work")  # no job id passed along by hand

    assert bus.consume(stage, handler, idle_timeout_s=1.0) == 1
    worker_log.info("outside any message")
    bus.close()
    found = {str(r["msg"]): r.get("job_id") for r in lines(json_log)}
    assert found["deep inside the work"] == "job-from-header"
    assert found["outside any message"] is None


@pytest.mark.integration
def test_grpc_metadata_job_id_and_one_line_per_call(tmp_path: Path, json_log: io.StringIO) -> None:
    server, port = serve(LocalStore(tmp_path), 0)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = spectrogram_pb2_grpc.SpectrogramStub(channel)
        request = spectrogram_pb2.TileRequest(audio_key="p/none.wav", start_s=0, end_s=3)
        with pytest.raises(grpc.RpcError):
            stub.RenderTile(request, metadata=(("x-job-id", "job-from-metadata"),))
    server.stop(grace=1)
    calls = [r for r in lines(json_log) if r["msg"] == "rpc"]
    assert len(calls) == 1
    assert calls[0]["job_id"] == "job-from-metadata"
    assert calls[0]["method"] == "/bdisc.v1.Spectrogram/RenderTile"
    assert calls[0]["code"] == "NOT_FOUND"


@pytest.mark.integration
@pytest.mark.parametrize(("stage", "held"), [(stages.EMBED, 1), (stages.EVENTS, 5)])
def test_prefetch_per_stage(rabbit_url: str, stage: str, held: int) -> None:
    """A worker of a long stage holds one message (the others stay for other replicas);
    the orchestrator takes events in batches."""
    bus = RabbitBus(rabbit_url, prefetch=stages.PREFETCH[stage])
    bus.purge(stage)
    for n in range(5):
        bus.publish(Message(stage, "j", f"k{n}", {}))
    ready: list[int] = []
    probe = RabbitBus(rabbit_url)
    assert probe.depth(stage) == 5  # the queue lag the metrics report

    def handler(message: Message) -> None:
        if not ready:
            ready.append(probe.depth(stage))

    assert bus.consume(stage, handler, idle_timeout_s=1.0) == 5
    assert ready == [5 - held]
    assert probe.depth(stage) == 0
    probe.close()
    bus.close()
