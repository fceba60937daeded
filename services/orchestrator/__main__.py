"""python -m orchestrator: migrate the job database, then consume events (wiring only)."""

from __future__ import annotations

import sys
import threading

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.s3_store import S3Store
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.app import stages
from bdisc.app.dead_letters import report_dead_letters
from bdisc.app.orchestrator import Orchestrator
from bdisc.errors import ConfigError, Retryable
from bdisc.logs import configure
from bdisc.service.consumer import consume_forever, install_stop_signals
from bdisc.service.metrics import Metrics
from bdisc.service.settings import DatabaseSettings, load


def main() -> int:
    try:
        s = load(DatabaseSettings)
    except ConfigError as exc:
        sys.stderr.write(f"orchestrator: {exc.message}\n")
        return 2
    configure(s.log_level, s.log_format)
    stop = install_stop_signals()
    try:
        metrics = Metrics.create(s.metrics_port)
    except ConfigError as exc:
        sys.stderr.write(f"{__package__}: {exc.message}\n")
        return 2
    migrate(s.database_url)
    objects = S3Store(
        s.s3_endpoint, s.s3_access_key, s.s3_secret_key.get_secret_value(), s.s3_bucket, s.s3_secure
    )
    orchestrator = Orchestrator(SqlJobStore(s.database_url), RabbitBus(s.rabbitmq_url), objects)

    def make_bus() -> RabbitBus:
        orchestrator.bus = RabbitBus(s.rabbitmq_url)
        return orchestrator.bus

    reporter = threading.Thread(
        target=report_dead_letters_forever,
        args=(s.rabbitmq_url, stop),
        name="dead-letters",
        daemon=True,
    )
    reporter.start()
    consume_forever(stages.EVENTS, make_bus, orchestrator.handle_event, metrics, stop)
    reporter.join(timeout=10)
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
