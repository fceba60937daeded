"""The loop every worker service runs: consume a stage until SIGTERM, reconnect on loss.

SIGTERM/SIGINT set a stop flag: the message (or batch) in hand is finished and
acknowledged, then
the process exits (unstarted messages stay in the queue). A lost broker connection is
retried with backoff; configuration errors stop the process.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.errors import Retryable, describe
from bdisc.logs import fields
from bdisc.ports.message_bus import BatchHandler, Handler, Message, MessageBus
from bdisc.service.metrics import Metrics

log = logging.getLogger(__name__)


def install_stop_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping after the current message", extra=fields(signal=signum))
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def instrumented(stage: str, handler: Handler, metrics: Metrics) -> Handler:
    def run(message: Message) -> None:
        started = time.monotonic()
        try:
            handler(message)
        except Exception as exc:
            metrics.items.labels(stage=stage, outcome=describe(exc)[0]).inc()
            raise
        finally:
            metrics.duration.labels(stage=stage).observe(time.monotonic() - started)
        metrics.items.labels(stage=stage, outcome="ok").inc()

    return run


def instrumented_batches(stage: str, handle_batch: BatchHandler, metrics: Metrics) -> BatchHandler:
    """A batch's messages counted as done when it succeeded (a failed batch's messages
    are counted by the per-message handler that settles them); its time shared out."""

    def run(messages: Sequence[Message]) -> None:
        started = time.monotonic()
        handle_batch(messages)
        each = (time.monotonic() - started) / max(1, len(messages))
        for _ in messages:
            metrics.duration.labels(stage=stage).observe(each)
        metrics.items.labels(stage=stage, outcome="ok").inc(len(messages))

    return run


def consume_forever(
    stage: str,
    make_bus: Callable[[], MessageBus],
    make_handler: Callable[[MessageBus], Handler],
    metrics: Metrics,
    stop: threading.Event,
    *,
    make_batch_handler: Callable[[MessageBus], BatchHandler] | None = None,
    max_batch: int = 32,
) -> None:
    """Consume ``stage`` until ``stop``; each connection gets a handler that publishes on
    that same connection (``make_handler(bus)``). With ``make_batch_handler``, messages
    are taken in batches of up to ``max_batch`` and ``make_handler``'s handler settles
    those of a failed batch one by one. A lost broker (the bus raises Retryable) is
    retried with backoff."""
    backoff = 1.0
    while not stop.is_set():
        bus: MessageBus | None = None
        try:
            bus = make_bus()
            handler = instrumented(stage, make_handler(bus), metrics)
            batches = None
            if make_batch_handler is not None:
                batches = instrumented_batches(stage, make_batch_handler(bus), metrics)
            log.info("consuming", extra=fields(stage=stage, batched=batches is not None))
            while not stop.is_set():
                if batches is not None:
                    bus.consume_batches(
                        stage, batches, handler, max_batch=max_batch, idle_timeout_s=2.0, stop=stop
                    )
                else:
                    bus.consume(stage, handler, idle_timeout_s=2.0, stop=stop)
                backoff = 1.0
        except Retryable as exc:
            log.warning(
                "broker connection lost or refused, reconnecting",
                extra=fields(error=exc.message, retry_in_s=backoff),
            )
            stop.wait(backoff)
            backoff = min(60.0, backoff * 2)
        finally:
            if bus is not None:
                try:
                    bus.close()
                except Exception:  # closing a dead connection
                    log.debug("close failed", exc_info=True)


def watch_queue(
    stage: str,
    make_bus: Callable[[], RabbitBus],
    metrics: Metrics,
    stop: threading.Event,
    every_s: float = 5.0,
) -> threading.Thread:
    """Keep the ``bdisc_queue_messages`` gauge of a stage current (the queue lag that the
    autoscaler and the dashboard read), from a thread with its own connection."""

    def run() -> None:
        bus: RabbitBus | None = None
        while not stop.is_set():
            try:
                bus = bus or make_bus()
                metrics.queue.labels(stage=stage).set(bus.depth(stage))
            except Exception:  # the broker is away: the consumer loop reports that
                log.debug("queue depth unavailable", exc_info=True)
                bus = None
            stop.wait(every_s)
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.close()

    thread = threading.Thread(target=run, name=f"bdisc-{stage}-depth", daemon=True)
    thread.start()
    return thread


def watch_backlog(
    stage: str,
    count: Callable[[str], int],
    metrics: Metrics,
    stop: threading.Event,
    every_s: float = 5.0,
) -> threading.Thread:
    """Keep the ``bdisc_backlog_items`` gauge of a stage current: the items of running
    jobs not yet done, whether sent to the queue or waiting for their project's slot
    (``embed_dispatch.py``). Autoscalers read this, since the queue is short by design."""

    def run() -> None:
        while not stop.is_set():
            try:
                metrics.backlog.labels(stage=stage).set(count(stage))
            except Exception:  # the database is away: the consumer loop reports that
                log.debug("backlog unavailable", exc_info=True)
            stop.wait(every_s)

    thread = threading.Thread(target=run, name=f"bdisc-{stage}-backlog", daemon=True)
    thread.start()
    return thread
