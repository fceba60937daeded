"""python -m orchestrator: migrate the job database, then consume events (wiring only)."""

from __future__ import annotations

import sys
import threading

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.app import stages
from bdisc.app.dead_letters import report_dead_letters
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.webhooks import WebhookNotifier
from bdisc.errors import Retryable
from bdisc.service.boot import boot
from bdisc.service.consumer import consume_forever, watch_queue
from bdisc.service.settings import DatabaseSettings


def report_dead_letters_forever(url: str, stop: threading.Event, every_s: float = 5.0) -> None:
    """Turn dead letters into failure events, so jobs with poison work still finish."""
    while not stop.is_set():
        bus = RabbitBus(url)
        try:
            report_dead_letters(bus)
        except Retryable:
            pass  # the broker is away; the main loop logs that
        finally:
            bus.close()
        stop.wait(every_s)


def main() -> int:
    booted = boot("orchestrator", DatabaseSettings)
    if booted is None:
        return 2
    s = booted.settings
    migrate(s.database_url)
    jobs = SqlJobStore(s.database_url)
    notify = WebhookNotifier(SqlProjectStore(jobs.engine).webhook)
    prefetch = stages.PREFETCH[stages.EVENTS]
    orchestrator = Orchestrator(
        jobs, RabbitBus(s.rabbitmq_url, prefetch=prefetch), booted.object_store(), notify
    )

    def make_bus() -> RabbitBus:
        orchestrator.bus = RabbitBus(s.rabbitmq_url, prefetch=prefetch)
        return orchestrator.bus

    reporter = threading.Thread(
        target=report_dead_letters_forever, args=(s.rabbitmq_url, booted.stop), daemon=True
    )
    reporter.start()
    for stage in stages.PREFETCH:  # the orchestrator reports every stage's backlog
        watch_queue(stage, lambda: RabbitBus(s.rabbitmq_url), booted.metrics, booted.stop)
    consume_forever(stages.EVENTS, make_bus, orchestrator.handle_event, booted.metrics, booted.stop)
    reporter.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
