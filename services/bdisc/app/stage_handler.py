"""How every stage serves its queue: read the message as the work it carries, run the
stage's function for that type of work, and publish the event it returns.

A stage is a set of ``Route``s: ``(job_id, work) -> Event``. The plumbing every stage
shares lives here once: an error the caller could fix or a bug becomes the work's
failure event (``work.failed``, with the error), so the job goes on; transient
infrastructure trouble (``Retryable``) propagates and the bus retries with backoff; a
message that is not work of this stage is refused (the bus dead-letters it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bdisc import tracing
from bdisc.app.cancel_marks import CancelMarks
from bdisc.app.messages import Event, Work, read, reply
from bdisc.errors import BdiscError, describe, is_retryable
from bdisc.logs import fields
from bdisc.ports.message_bus import Handler, MalformedMessage, Message, MessageBus

log = logging.getLogger(__name__)

Route = Callable[[str, Any], Event]  # (job id, work of the route's type) -> its outcome
Routes = Mapping[type[Work], Route]


def run_work(job_id: str, work: Work, route: Route) -> Event:
    """The outcome of one work item: the route's event, or the item's failure."""
    try:
        return route(job_id, work)
    except Exception as exc:
        if is_retryable(exc):
            raise  # the bus retries with backoff
        kind, text = describe(exc)
        log.warning(  # a bug (not one of our errors) with its traceback
            "work failed",
            extra=fields(job_id=job_id, work=work.kind, error=f"{kind}: {text}"),
            exc_info=not isinstance(exc, BdiscError),
        )
        return work.failed(f"{kind}: {text}")


def stage_handler(bus: MessageBus, routes: Routes, marks: CancelMarks | None = None) -> Handler:
    """The bus handler of a stage whose events go out on ``bus``; with ``marks``, work of
    a cancelled job is dropped unread (``cancel_marks.py``)."""

    def handle(message: Message) -> None:
        work = read(message)
        route = routes.get(type(work)) if isinstance(work, Work) else None
        if route is None or not isinstance(work, Work):
            raise MalformedMessage(f"this stage does not do {work.kind} work")
        if marks is not None and marks.cancelled(work.project, message.job_id):
            log.info("work of a cancelled job dropped", extra=fields(job_id=message.job_id))
            return
        with tracing.span(
            f"{work.stage} {work.kind}",
            message.trace,
            "consumer",
            job_id=message.job_id,
            attempt=message.attempt,
        ):
            bus.publish(reply(message, run_work(message.job_id, work, route)))

    return handle
