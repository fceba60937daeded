"""Work that died (poison messages, exhausted retries, crash loops past the broker's
delivery limit) must still end its job: each dead letter becomes the failure event of
the work it carried (``work.failed``), naming the recording or deployment and the
error; a dead letter that no longer reads as work fails its job (``WorkUnreadable``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from bdisc import tracing
from bdisc.app import stages
from bdisc.app.messages import Event, Work, WorkUnreadable, read, to_message
from bdisc.errors import Retryable
from bdisc.logs import fields
from bdisc.ports.message_bus import DeadLetter, MalformedMessage, Message, MessageBus

log = logging.getLogger(__name__)


def report_dead_letters(bus: MessageBus, watched: Sequence[str] = stages.WORK_STAGES) -> int:
    """Turn the dead letters of ``watched`` stages into failure events; each leaves its
    queue only once its event is confirmed (a reporter that dies in between reports it
    again: the orchestrator settles an item once). Returns how many were handled."""

    def report(dead: DeadLetter) -> None:
        try:
            message = Message.from_bytes(dead.body, any_version=True)
        except MalformedMessage:
            log.error(
                "unattributable dead letter dropped",
                extra=fields(stage=dead.stage, error=dead.error, body=dead.body[:200]),
            )
            return
        with tracing.span(f"{dead.stage} dead letter", message.trace, job_id=message.job_id):
            event = _failure(message, dead)  # never raises: a bad letter fails its job
            bus.publish(to_message(message.job_id, f"{message.idempotency_key}:dead", event))

    return sum(bus.settle_dead_letters(stage, report) for stage in watched)


def _failure(message: Message, dead: DeadLetter) -> Event:
    error = f"dead-lettered: {dead.error}"
    try:
        work = read(message)
    except MalformedMessage as exc:
        return WorkUnreadable(dead_stage=dead.stage, error=f"{error} ({exc.message})")
    except Exception as exc:  # a parser's bug must not stop the reporting of the others
        log.exception("dead letter unreadable", extra=fields(stage=dead.stage))
        return WorkUnreadable(dead_stage=dead.stage, error=f"{error} ({exc!r})")
    if not isinstance(work, Work):
        return WorkUnreadable(dead_stage=dead.stage, error=f"{error} (not work: {work.kind})")
    return work.failed(error)


def report_dead_letters_forever(
    make_bus: Callable[[], MessageBus], stop: threading.Event, every_s: float = 5.0
) -> None:
    """Report dead letters every ``every_s`` until ``stop`` (the orchestrator's thread),
    so jobs with poison work still finish; a broker that is away is tried again later."""
    while not stop.is_set():
        try:
            bus = make_bus()
        except Retryable:
            stop.wait(every_s)
            continue
        try:
            report_dead_letters(bus)
        except Retryable:
            log.info("broker away: dead letters are reported later")
        except Exception:  # keep reporting: a job with poison work must still end
            log.exception("dead-letter reporting failed; trying again")
        finally:
            bus.close()
        stop.wait(every_s)
