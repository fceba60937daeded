"""A project's webhook hears about its finished jobs, signed with the project's secret."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bdisc.adapters.inprocess_bus import InProcessBus
from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.app import stages
from bdisc.app.ingest_stage import IngestStage
from bdisc.app.messages import Cancel, Clustered, Embedded, Linked, to_message
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.stage_handler import stage_handler
from bdisc.app.webhooks import SIGNATURE_HEADER, WebhookNotifier, check_target, verify
from bdisc.errors import ConfigError
from bdisc.ports.job_store import JobRecord

from ..commands import discovery

Received = list[tuple[dict[str, str], bytes]]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    received: Received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.mark.integration
def test_finished_job_is_announced_and_signed(
    postgres_url: str, receiver: tuple[str, Received], tmp_path: Path
) -> None:
    url, received = receiver
    migrate(postgres_url)
    jobs = SqlJobStore(postgres_url)
    projects = SqlProjectStore(jobs.engine)
    project, _ = projects.create(f"hook-{uuid.uuid4().hex[:6]}")
    projects.set_webhook(project.id, url)
    objects = LocalStore(tmp_path / "s3")
    sf.write(tmp_path / "r.wav", np.zeros(48_000, dtype=np.float32), 48_000)
    objects.put_file(f"projects/{project.id}/audio/site/r.wav", tmp_path / "r.wav")
    bus = InProcessBus()
    notifier = WebhookNotifier(projects.webhook, backoff_s=0.05, allow_private=True)
    orchestrator = Orchestrator(jobs, bus, objects, notifier, labels=SqlLabelStore(jobs.engine))
    ingestion = stage_handler(bus, IngestStage(objects).routes)
    job = orchestrator.submit_discovery(None, discovery(project.id))
    bus.consume(stages.INGEST, ingestion, idle_timeout_s=0.1)
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=0.1)
    assert jobs.progress(job)["embed"] == {"running": 1}  # sent
    for event in (
        Embedded(key=f"projects/{project.id}/audio/site/r.wav", group="site", output="e"),
        Clustered(group="site", output="c"),
        Linked(round="an older round", output="t"),  # ignored
    ):
        orchestrator.handle_event(to_message(job, f"{job}:{event.kind}", event))
    assert received == []  # not done before its sound types are linked
    round_id = jobs.items(job, stages.LINK)[0].output
    linked = to_message(job, f"{job}:linked", Linked(round=round_id, output="t"))
    orchestrator.handle_event(linked)
    wait_until(lambda: len(received) == 1)  # sent from the notifier's own thread
    orchestrator.handle_event(linked)  # redelivered: the webhook hears of it once
    orchestrator.handle_event(to_message(job, f"{job}:cancel", Cancel()))  # too late
    time.sleep(0.5)
    assert len(received) == 1
    headers, body = received[0]
    event = json.loads(body)
    assert (event["event"], event["job_id"], event["status"]) == ("job.done", job, "done")
    assert len(event["delivery"]) == 32 and event["sent_at"]  # for the receiver's replay check
    assert verify(project.webhook_secret, body, headers[SIGNATURE_HEADER])
    assert not verify("another secret", body, headers[SIGNATURE_HEADER])
    # A job that cannot start (no recordings) is announced as failed.
    orchestrator.handle_event(to_message("j2", "j2:submit", discovery(project.id, "nowhere/")))
    bus.consume(stages.INGEST, ingestion, idle_timeout_s=0.1)
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=0.1)
    wait_until(lambda: len(received) == 2)
    assert json.loads(received[1][1])["event"] == "job.failed"
    assert "no recordings under 'nowhere/'" in jobs.job("j2").error
    notifier.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",  # this machine
        "http://localhost:15672/api",  # the broker's console
        "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
        "http://10.0.0.5/",
        "http://[::1]/",
        "http://192.168.1.1:9000/",  # MinIO on a private network
        "ftp://example.org/",
        "http:///nohost",
    ],
)
def test_webhooks_to_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        check_target(url)


def test_webhooks_to_public_addresses_pass_and_a_development_stack_may_opt_in() -> None:
    check_target("https://93.184.215.14/hook")  # a public address (no DNS needed)
    check_target("http://127.0.0.1:8000/hook", allow_private=True)


def test_a_delivery_goes_to_the_address_that_was_checked(
    receiver: tuple[str, Received],
) -> None:
    """DNS rebinding: the name is resolved once per attempt, checked, and that address is
    the one connected to (the name stays in Host). Here the name resolves only through
    the notifier's resolver, to the receiver; a second lookup of it would fail."""
    url, received = receiver
    port = url.split(":")[2].split("/")[0]
    lookups: list[str] = []

    def resolve(host: str, *_: object, **__: object) -> list[tuple[object, ...]]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]

    hook = f"http://hooks.invalid:{port}/hook"
    notifier = WebhookNotifier(
        lambda _: (hook, "s3cret"), backoff_s=0.05, allow_private=True, resolve=resolve
    )
    job = JobRecord("j1", "p", "discover", {}, "done", "", datetime.now(UTC), datetime.now(UTC))
    future = notifier(job, {})
    assert future is not None and future.result(timeout=30)
    notifier.close()
    ((headers, _),) = received
    assert headers["Host"] == f"hooks.invalid:{port}"
    assert lookups == ["hooks.invalid"]
    # the same name resolving to an internal address is refused without a connection
    strict = WebhookNotifier(lambda _: (hook, "s3cret"), attempts=1, resolve=resolve)
    assert strict.deliver(job, {}, hook, "s3cret") is False
    strict.close()
    assert len(received) == 1


def test_a_host_with_several_addresses_gets_the_next_when_one_does_not_answer(
    receiver: tuple[str, Received],
) -> None:
    """Every address the name resolves to is checked; one that refuses the connection
    (a replica that is down) passes the delivery to the next, within the same try."""
    url, received = receiver
    port = int(url.split(":")[2].split("/")[0])

    def resolve(host: str, *_: object, **__: object) -> list[tuple[object, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),  # no one there
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    hook = f"http://hooks.invalid:{port}/hook"
    notifier = WebhookNotifier(
        lambda _: (hook, "s3cret"), attempts=1, allow_private=True, resolve=resolve
    )
    job = JobRecord("j2", "p", "discover", {}, "done", "", datetime.now(UTC), datetime.now(UTC))
    assert notifier.deliver(job, {}, hook, "s3cret") is True
    notifier.close()
    ((headers, _),) = received
    assert headers["Host"] == f"hooks.invalid:{port}"
