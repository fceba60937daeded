"""The orchestrator settling its events in batches (one transaction, confirms awaited
once) on the real broker and PostgreSQL: the outcome is that of one event at a time,
a failed batch is rolled back and redone event by event, and a writer killed after
its commit but before publishing and acknowledging loses nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.app import stages
from bdisc.app.messages import (
    ClusterWork,
    Embedded,
    EmbedFailed,
    Planned,
    PlannedRecording,
    SubmitDiscovery,
    read_as,
    to_message,
)
from bdisc.app.orchestrator import Orchestrator
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.ports.message_bus import Message

from .conftest import orchestrator_on

pytestmark = pytest.mark.integration

Setup = tuple[RabbitBus, SqlJobStore, Orchestrator, str]


@pytest.fixture
def setup(rabbit_url: str, postgres_url: str, tmp_path: Path) -> Iterator[Setup]:
    bus, jobs, orchestrator = orchestrator_on(rabbit_url, postgres_url, tmp_path)
    yield bus, jobs, orchestrator, postgres_url
    bus.close()


def planned_job(bus: RabbitBus, orchestrator: Orchestrator, recordings: int) -> tuple[str, list]:
    """A discovery job planned with ``recordings`` over two deployments; the work it sent
    is drained. Returns the job and its (key, group) recordings."""
    spec = DiscoverySpec.from_dict({})
    job = orchestrator.submit_discovery(None, SubmitDiscovery(project="p", spec=spec))
    keys = [
        (f"projects/p/audio/site{i % 2}/r{i:03d}.wav", f"site{i % 2}") for i in range(recordings)
    ]
    plan = Planned(items=tuple(PlannedRecording(key=k, group=g) for k, g in keys))
    orchestrator.handle_event(to_message(job, f"{job}:planned", plan))
    for stage in (stages.INGEST, stages.EMBED):
        bus.purge(stage)
    return job, keys


def outcomes(job: str, keys: list) -> list[Message]:
    """An outcome for every recording, the first one failed."""
    events: list[Message] = []
    for n, (key, group) in enumerate(keys):
        event = (
            EmbedFailed(key=key, group=group, error="CorruptAudio: bad header")
            if n == 0
            else Embedded(key=key, group=group, output=f"emb/{n}.parquet")
        )
        events.append(to_message(job, f"{job}:{key}:outcome", event))
    return events


def asked_to_cluster(bus: RabbitBus) -> list[ClusterWork]:
    asked: list[Message] = []
    bus.consume(stages.CLUSTER, asked.append, idle_timeout_s=0.5)
    return [read_as(m, ClusterWork) for m in asked]


def consume_events(bus: RabbitBus, orchestrator: Orchestrator, count: int) -> None:
    settled = 0
    for _ in range(20):
        settled += bus.consume_batches(
            stages.EVENTS,
            orchestrator.handle_events,
            orchestrator.handle_event,
            idle_timeout_s=1.0,
        )
        if settled >= count:
            return


def assert_settled(jobs: SqlJobStore, job: str, recordings: int) -> None:
    progress = jobs.progress(job)
    assert progress[stages.EMBED] == {"done": recordings - 1, "failed": 1}
    assert progress[stages.CLUSTER] == {"pending": 2}  # each deployment asked, once


def test_batches_settle_a_job_as_events_one_at_a_time_would(setup: Setup) -> None:
    bus, jobs, orchestrator, _ = setup
    job, keys = planned_job(bus, orchestrator, 40)
    events = outcomes(job, keys)
    bus.publish_many([*events, events[5]])  # and one redelivered
    consume_events(bus, orchestrator, 41)
    assert_settled(jobs, job, 40)
    asked = asked_to_cluster(bus)
    assert sorted(w.group for w in asked) == ["site0", "site1"]
    assert {len(w.recordings) for w in asked} == {19, 20}  # the failed one is left out


def test_a_failed_batch_is_rolled_back_and_redone_event_by_event(setup: Setup) -> None:
    bus, jobs, orchestrator, _ = setup
    job, keys = planned_job(bus, orchestrator, 10)
    events = outcomes(job, keys)
    ghost = Embedded(key="x.wav", group="x", output="emb/x.parquet")
    poison = to_message("no-such-job", "ghost", ghost)  # refused by the database
    bus.publish_many([*events[:5], poison, *events[5:]])
    consume_events(bus, orchestrator, 11)
    assert_settled(jobs, job, 10)
    assert sorted(w.group for w in asked_to_cluster(bus)) == ["site0", "site1"]
    dead = bus.dead_letters(stages.EVENTS)
    assert len(dead) == 1 and b"no-such-job" in dead[0].body


KILLED_AFTER_COMMIT = """
import os, sys, tempfile
from pathlib import Path
from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.orchestrator import Orchestrator
bus = RabbitBus(sys.argv[1], prefetch=32)
jobs = SqlJobStore(sys.argv[2])
o = Orchestrator(jobs, bus, LocalStore(Path(tempfile.mkdtemp())), labels=SqlLabelStore(jobs.engine))
def commit_then_die(messages):
    o.handle_events(messages)  # committed: the work it asked for is not sent yet
    os._exit(9)
bus.consume_batches(stages.EVENTS, commit_then_die, o.handle_event, idle_timeout_s=5)
"""


def test_a_writer_killed_after_its_commit_loses_nothing(setup: Setup, rabbit_url: str) -> None:
    """Nothing is acknowledged before the state is committed and the messages are
    confirmed: killed in between, the batch is redelivered, and the redelivered events
    send again the work that was recorded but never sent."""
    bus, jobs, orchestrator, url = setup
    job, keys = planned_job(bus, orchestrator, 20)
    bus.publish_many(outcomes(job, keys))
    done = subprocess.run([sys.executable, "-c", KILLED_AFTER_COMMIT, rabbit_url, url], timeout=120)
    assert done.returncode == 9
    assert_settled(jobs, job, 20)  # committed by the killed writer
    assert asked_to_cluster(bus) == []  # ... which sent nothing
    consume_events(bus, orchestrator, 20)  # the whole batch again
    assert_settled(jobs, job, 20)
    assert sorted(w.group for w in asked_to_cluster(bus)) == ["site0", "site1"]
