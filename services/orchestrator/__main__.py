"""python -m orchestrator: take the writer lock (a second orchestrator waits as a
standby), wait for the job database's schema (the migrate Job brings it), then consume
events (wiring only)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.schema_gate import await_schema
from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.adapters.writer_lock import WriterLock
from bdisc.app import stages
from bdisc.app.dead_letters import report_dead_letters_forever
from bdisc.app.embed_dispatch import DispatchCap
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.webhooks import WebhookNotifier
from bdisc.errors import ConfigError
from bdisc.ports.message_bus import BatchHandler, Handler, MessageBus
from bdisc.service.boot import boot
from bdisc.service.bus import rabbit_bus
from bdisc.service.consumer import consume_forever, watch_backlog, watch_queue
from orchestrator.settings import OrchestratorSettings

EVENT_RETRIES = 100_000


def main() -> int:
    booted = boot("orchestrator", OrchestratorSettings)
    if booted is None:
        return 2
    s = booted.settings
    lock = WriterLock(s.database_url)  # first: a standby reads and changes nothing
    if not lock.acquire(booted.stop):
        return 0  # stopped while a standby
    try:
        if not await_schema(s.database_url, s.schema_wait_s, stop=booted.stop):
            return 0  # stopped while waiting for the migrate Job

        def bus(**options: Any) -> RabbitBus:  # its sender check and topology mode
            return rabbit_bus(s, "orchestrator", **options)

        bus()  # a misconfigured bus user stops the service here, not in a thread
    except ConfigError as exc:
        sys.stderr.write(f"orchestrator: {exc.message}\n")
        return 2
    jobs = SqlJobStore(s.database_url)
    notify = WebhookNotifier(
        SqlProjectStore(jobs.engine).webhook, allow_private=s.webhook_allow_private
    )
    labels = SqlLabelStore(jobs.engine)
    objects = booted.object_store()

    def embedding_replicas() -> int:  # a connection of its own, every few seconds
        counter = bus()
        try:
            return counter.consumers(stages.EMBED)
        finally:
            counter.close()

    cap = DispatchCap(count=embedding_replicas, fixed=s.embed_in_flight)

    def make_orchestrator(bus: MessageBus) -> Orchestrator:  # commands go out on this bus
        return Orchestrator(jobs, bus, objects, notify, labels=labels, embed_cap=cap)

    def make_handler(bus: MessageBus) -> Handler:  # a failed batch's events, one by one
        return make_orchestrator(bus).handle_event

    def make_batch_handler(bus: MessageBus) -> BatchHandler:  # a batch, one transaction
        return make_orchestrator(bus).handle_events

    def make_bus() -> RabbitBus:
        # an event is never given up for a transient outage (the database restarting):
        # retried with backoff (at most 5 minutes apart) until it goes through
        return bus(prefetch=stages.PREFETCH[stages.EVENTS], max_retries=EVENT_RETRIES)

    reporter = threading.Thread(
        target=report_dead_letters_forever,
        args=(bus, booted.stop),
        daemon=True,
    )
    reporter.start()
    for stage in stages.PREFETCH:  # the orchestrator reports every stage's backlog
        watch_queue(stage, bus, booted.metrics, booted.stop)
    watch_backlog(stages.EMBED, jobs.backlog, booted.metrics, booted.stop)  # the autoscaler's
    consume_forever(
        stages.EVENTS,
        make_bus,
        make_handler,
        booted.metrics,
        booted.stop,
        make_batch_handler=make_batch_handler,
        max_batch=stages.PREFETCH[stages.EVENTS],
    )
    reporter.join(timeout=10)
    lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
