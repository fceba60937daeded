"""Events per second through the single writer: the orchestrator settling a synthetic job's
"embedded" events on the real broker and PostgreSQL, against the broker alone (the same
number of messages consumed by a handler that does nothing) measured in the same run;
and the fan-in's wait: the last deployment's clustering is asked by the batch that
settles its last outcome, so the time from that outcome to the ClusterWork is the last
batch's handling (reported with the slowest batch's).

    .venv/bin/python bench/orchestrator_throughput.py [--recordings 10000] [--deployments 20]
        [--per-event]

The orchestrator takes its events in batches (``Orchestrator.handle_events``: one
transaction and one wait for the broker's confirms per batch), as its service does;
``--per-event`` measures the handler of one event at a time instead.

Needs RabbitMQ and PostgreSQL on 127.0.0.1 (``scripts/ensure-test-infra.sh``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa

from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.messages import Embedded, Planned, PlannedRecording, SubmitDiscovery, to_message
from bdisc.app.orchestrator import Orchestrator
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.ports.message_bus import BatchHandler, Message

RABBIT = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def consume_all(
    bus: RabbitBus,
    stage: str,
    handler: Callable[[Message], None],
    count: int,
    batches: BatchHandler | None = None,
) -> float:
    started = time.perf_counter()
    settled = 0
    while settled < count:
        left = count - settled
        if batches is None:
            settled += bus.consume(stage, handler, max_messages=left, idle_timeout_s=5.0)
        else:
            settled += bus.consume_batches(
                stage,
                batches,
                handler,
                max_batch=stages.PREFETCH[stages.EVENTS],
                max_messages=left,
                idle_timeout_s=5.0,
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=10_000)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--per-event", action="store_true", help="one event at a time")
    args = parser.parse_args()
    n = args.recordings
    name = f"bdisc_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    bus = RabbitBus(RABBIT, prefetch=stages.PREFETCH[stages.EVENTS])
    try:
        migrate(url)
        jobs = SqlJobStore(url)
        for stage in stages.PREFETCH:
            bus.purge(stage)
        # The broker alone: n messages through a handler that does nothing.
        raw = f"bench-{uuid.uuid4().hex[:6]}"
        for i in range(n):
            bus.publish(Message(raw, "job", f"raw-{i}", {"n": i}))
        broker_s = consume_all(bus, raw, lambda m: None, n)
        bus.purge(raw)

        with tempfile.TemporaryDirectory() as tmp:
            objects = LocalStore(Path(tmp))
            orchestrator = Orchestrator(jobs, bus, objects, labels=SqlLabelStore(jobs.engine))
            spec = DiscoverySpec.from_dict({})
            job = orchestrator.submit_discovery(None, SubmitDiscovery(project="bench", spec=spec))
            sites = [f"site{i % args.deployments:03d}" for i in range(n)]
            keys = [(f"projects/bench/audio/{s}/r{i:07d}.wav", s) for i, s in enumerate(sites)]
            planned = Planned(items=tuple(PlannedRecording(key=k, group=g) for k, g in keys))
            started = time.perf_counter()
            orchestrator.handle_event(to_message(job, f"{job}:planned", planned))
            plan_s = time.perf_counter() - started
            for stage in (stages.EMBED, stages.INGEST):
                bus.purge(stage)
            for key, group in keys:
                event = Embedded(key=key, group=group, output=f"embeddings/{key}.parquet")
                bus.publish(to_message(job, f"{job}:{key}:embedded", event))
            took: list[float] = []  # each batch's handling: the last one asks to cluster

            def timed(messages: Sequence[Message]) -> None:
                begun = time.perf_counter()
                orchestrator.handle_events(messages)
                took.append(time.perf_counter() - begun)

            batches = None if args.per_event else timed
            events_s = consume_all(bus, stages.EVENTS, orchestrator.handle_event, n, batches)
            clustering = jobs.progress(job).get(stages.CLUSTER, {}).get("pending", 0)
            for stage in (stages.CLUSTER, stages.EMBED):  # the work it sent, unserved
                bus.purge(stage)
    finally:
        bus.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    rate = n / events_s
    report = {
        "recordings": n,
        "deployments": args.deployments,
        "batched": not args.per_event,
        "plan_s": round(plan_s, 2),
        "broker_messages_per_s": round(n / broker_s, 1),
        "orchestrator_events_per_s": round(rate, 1),
        "ratio_to_broker": round(rate / (n / broker_s), 3),
        "deployments_asked_to_cluster": clustering,
        # the fan-in: the last deployment's ClusterWork goes out with the batch that
        # settles its last outcome, so the wait is that batch's handling (and its publish)
        "last_batch_ms": round(1000 * took[-1], 1) if took else None,
        "slowest_batch_ms": round(1000 * max(took), 1) if took else None,
        "minutes_for_280000_recordings": round(280_000 / rate / 60, 1),
    }
    print(json.dumps(report, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
