"""Prometheus metrics of a worker service, served on ``BDISC_METRICS_PORT``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from bdisc.errors import ConfigError

BACKLOG = "bdisc_backlog_items"  # what KEDA scales the embedding replicas on (k8s/)


@dataclass(frozen=True)
class Metrics:
    items: Counter
    duration: Histogram
    windows: Counter
    queue: Gauge
    backlog: Gauge

    @classmethod
    def create(cls, port: int) -> Metrics:
        metrics = cls(
            items=Counter("bdisc_items_total", "messages handled", ["stage", "outcome"]),
            duration=Histogram(
                "bdisc_item_seconds",
                "time per message",
                ["stage"],
                buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
            ),
            windows=Counter("bdisc_windows_total", "3-s windows run through the model"),
            queue=Gauge(
                "bdisc_queue_messages", "messages waiting in a stage's work queue", ["stage"]
            ),
            backlog=Gauge(
                BACKLOG,
                "items of running jobs a stage has yet to do, sent or not (the orchestrator's)",
                ["stage"],
            ),
        )
        serve_metrics(port)
        return metrics


def serve_metrics(port: int) -> None:
    """Serve the process's metrics on ``port`` (0: not at all), in a thread of their own."""
    if not port:
        return
    try:
        start_http_server(port)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on port {port} ({exc.strerror}): "
            "set BDISC_METRICS_PORT to a free port, or 0"
        ) from exc
