"""Fair dispatch of embedding work (``app/embed_dispatch.py``) on the real broker and
PostgreSQL: each project has at most ``cap`` recordings in flight, so a small job of
another project is sent at once behind a big one; each outcome lets the next recording
of the same project go; and a writer killed after marking recordings sent but before
sending them sends them again when its event is redelivered."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.app import stages
from bdisc.app.embed_dispatch import DispatchCap
from bdisc.app.messages import (
    Cancel,
    Embedded,
    EmbedWork,
    Planned,
    PlannedRecording,
    RetryFailed,
    SubmitDiscovery,
    read_as,
    to_message,
)
from bdisc.app.orchestrator import Orchestrator
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.ports.message_bus import Message

from .conftest import orchestrator_on

pytestmark = pytest.mark.integration

CAP = 3


@pytest.fixture
def setup(
    rabbit_url: str, postgres_url: str, tmp_path: Path
) -> Iterator[tuple[RabbitBus, SqlJobStore, Orchestrator]]:
    bus, jobs, orchestrator = orchestrator_on(
        rabbit_url, postgres_url, tmp_path, embed_cap=DispatchCap(fixed=CAP)
    )
    yield bus, jobs, orchestrator
    bus.close()


def submitted(orchestrator: Orchestrator, bus: RabbitBus, project: str) -> str:
    spec = DiscoverySpec.from_dict({})
    job = orchestrator.submit_discovery(None, SubmitDiscovery(project=project, spec=spec))
    bus.purge(stages.INGEST)
    return job


def plan(job: str, project: str, recordings: int) -> tuple[Message, list[PlannedRecording]]:
    planned = [
        PlannedRecording(key=f"projects/{project}/audio/s/r{i:03d}.wav", group="s")
        for i in range(recordings)
    ]
    return to_message(job, f"{job}:planned", Planned(items=tuple(planned))), planned


def sent(bus: RabbitBus) -> list[tuple[str, str]]:
    """(job, recording) of every EmbedWork in the queue, drained."""
    got: list[Message] = []
    bus.consume(stages.EMBED, got.append, idle_timeout_s=0.5)
    return [(m.job_id, read_as(m, EmbedWork).audio_key) for m in got]


def test_a_small_job_is_sent_at_once_behind_a_big_one(setup) -> None:  # type: ignore[no-untyped-def]
    bus, jobs, orchestrator = setup
    big_project, small_project = f"big-{uuid.uuid4().hex[:6]}", f"small-{uuid.uuid4().hex[:6]}"
    big = submitted(orchestrator, bus, big_project)
    message, big_items = plan(big, big_project, 50)
    orchestrator.handle_event(message)
    assert sent(bus) == [(big, r.key) for r in big_items[:CAP]]  # the first CAP, in order
    assert jobs.progress(big)[stages.EMBED] == {"running": CAP, "pending": 50 - CAP}
    assert jobs.backlog(stages.EMBED) >= 50

    small = submitted(orchestrator, bus, small_project)
    message, small_items = plan(small, small_project, 2)
    orchestrator.handle_event(message)
    assert sent(bus) == [(small, r.key) for r in small_items]  # not behind the 47 waiting

    # each outcome frees a slot that the same project's next recording takes
    done = Embedded(key=big_items[0].key, group="s", output="emb/0.parquet")
    orchestrator.handle_events([to_message(big, f"{big}:0:embedded", done)])
    assert sent(bus) == [(big, big_items[CAP].key)]
    assert jobs.progress(big)[stages.EMBED] == {"done": 1, "running": CAP, "pending": 46}
    # a redelivered outcome (settled already) sends nothing new
    orchestrator.handle_events([to_message(big, f"{big}:0:embedded", done)])
    assert sent(bus) == []

    # a cancelled job's slots go to the project's next job
    second = submitted(orchestrator, bus, big_project)
    message, second_items = plan(second, big_project, 4)
    orchestrator.handle_event(message)
    assert sent(bus) == []  # the project's slots are taken by the first job
    orchestrator.handle_event(to_message(big, f"{big}:cancel", Cancel()))
    assert sent(bus) == [(second, r.key) for r in second_items[:CAP]]


KILLED_AFTER_COMMIT = """
import os, sys, tempfile
from pathlib import Path
from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.embed_dispatch import DispatchCap
from bdisc.app.orchestrator import Orchestrator
bus = RabbitBus(sys.argv[1], prefetch=32)
jobs = SqlJobStore(sys.argv[2])
o = Orchestrator(jobs, bus, LocalStore(Path(tempfile.mkdtemp())),
                 labels=SqlLabelStore(jobs.engine), embed_cap=DispatchCap(fixed=int(sys.argv[3])))
def commit_then_die(messages):
    o.handle_events(messages)  # committed: recordings marked sent, not sent yet
    os._exit(9)
bus.consume_batches(stages.EVENTS, commit_then_die, o.handle_event, idle_timeout_s=5)
"""


def test_recordings_marked_sent_by_a_killed_writer_are_sent_again(  # type: ignore[no-untyped-def]
    setup, rabbit_url: str, postgres_url: str
) -> None:
    bus, jobs, orchestrator = setup
    project = f"p-{uuid.uuid4().hex[:6]}"
    job = submitted(orchestrator, bus, project)
    message, items = plan(job, project, 10)
    bus.publish(message)
    args = [sys.executable, "-c", KILLED_AFTER_COMMIT, rabbit_url, postgres_url, str(CAP)]
    assert subprocess.run(args, timeout=120).returncode == 9
    assert jobs.progress(job)[stages.EMBED] == {"running": CAP, "pending": 10 - CAP}
    assert sent(bus) == []  # marked sent, never sent
    for _ in range(10):  # the broker redelivers the plan, flagged as redelivered
        if bus.consume_batches(
            stages.EVENTS, orchestrator.handle_events, orchestrator.handle_event, idle_timeout_s=1.0
        ):
            break
    assert sent(bus) == [(job, r.key) for r in items[:CAP]]  # sent again, nothing more
    assert jobs.progress(job)[stages.EMBED] == {"running": CAP, "pending": 10 - CAP}


def test_a_retry_sends_the_work_in_flight_again_and_a_broken_job_fails_alone(  # type: ignore[no-untyped-def]
    setup,
) -> None:
    """A user's retry is a way out whatever was lost: the project's work in flight goes
    out again. A job whose work cannot be made fails with the reason; the project's
    other jobs go on."""
    bus, jobs, orchestrator = setup
    project = f"p-{uuid.uuid4().hex[:6]}"
    job = submitted(orchestrator, bus, project)
    message, items = plan(job, project, 5)
    orchestrator.handle_event(message)
    lost = sent(bus)  # as if these messages were lost
    assert lost == [(job, r.key) for r in items[:CAP]]
    orchestrator.handle_event(to_message(job, f"{job}:retry", RetryFailed()))
    assert sent(bus) == lost  # sent again, nothing more
    assert jobs.progress(job)[stages.EMBED] == {"running": CAP, "pending": 5 - CAP}

    other = f"p-{uuid.uuid4().hex[:6]}"
    broken = f"broken-{uuid.uuid4().hex[:6]}"
    keys = [(f"projects/{other}/audio/s/b{i}.wav", "s") for i in range(2)]
    bad_params = {"cluster": {"min_cluster_size": -5}}  # cannot be read back as a spec
    assert jobs.create_job(broken, other, "discover", bad_params, keys, stages.EMBED)
    jobs.set_job_status(broken, "running")
    fine = submitted(orchestrator, bus, other)
    message, fine_items = plan(fine, other, 2)
    orchestrator.handle_event(message)
    assert jobs.job(broken).status == "failed"
    assert "could not be made" in jobs.job(broken).error
    assert sent(bus) == [(fine, r.key) for r in fine_items]
