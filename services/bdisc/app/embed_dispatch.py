"""Fair dispatch of embedding work: each project has at most a few recordings in flight.

The embedding queue is first in, first out. If every planned recording went to it at
once, one project's 10,000-file job (or a flood of submissions) would put another
project's small job behind all of it. So the orchestrator sends a project's recordings
a few at a time: an item is ``pending`` until it is sent and ``running`` once sent, and
each project has at most ``cap`` items in flight (of all its running jobs, the oldest
job's first). Each outcome frees a slot that the next waiting item of the *same*
project takes, so the queue holds about ``cap`` items per busy project and replicas
serve busy projects in turn: a small job waits behind at most ``cap`` items of any
other project, not behind their whole backlog.

The cap follows the number of embedding replicas (``per_consumer`` each, so every
replica has one in hand and one waiting per busy project), never below ``floor``; an
operator may fix it instead. Because the queue is short by design, autoscalers scale on
the orchestrator's backlog gauge (``JobStore.backlog``), not on the queue's length.

At least once: items are marked sent in the same transaction as the event that freed
their slot, and the messages go out after it commits. If they were lost (the
orchestrator killed between the commit and the publish), the event is delivered again,
flagged as redelivered, and the project's items in flight are sent again (embedding is
idempotent; an outcome settles once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bdisc.app import stages
from bdisc.ports.job_store import ItemRecord, JobStore

PER_CONSUMER = 2  # items in flight per project and embedding replica
FLOOR = 2  # at least this many, even with no replica up (the backlog scales them up)
REFRESH_S = 10.0  # how often the replicas are counted


@dataclass
class DispatchCap:
    """How many items of one project may be in flight: ``fixed`` if set, else
    ``per_consumer`` x the consumers ``count`` reports (asked at most every
    ``refresh_s``), at least ``floor``."""

    count: Callable[[], int] | None = None
    fixed: int = 0
    per_consumer: int = PER_CONSUMER
    floor: int = FLOOR
    refresh_s: float = REFRESH_S
    _cached: tuple[float, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self) -> int:
        if self.fixed > 0:
            return self.fixed
        if self.count is None:
            return self.floor
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.refresh_s:
                try:
                    consumers = self.count()
                except Exception:  # the broker is away: keep the last count
                    consumers = self._cached[1] if self._cached else 0
                self._cached = (now, consumers)
            return max(self.floor, self.per_consumer * self._cached[1])


def top_up(
    jobs: JobStore,
    project: str,
    cap: int,
    send: Callable[[ItemRecord, int], None],
    *,
    resend: bool = False,
) -> int:
    """Send the project's next waiting items up to ``cap`` in flight, marking them sent
    (in the caller's unit of work); with ``resend``, first send again every item already
    in flight (their first sending may have been lost). ``send(item, attempt)`` builds
    and publishes one item's work. Returns how many items were newly sent."""
    in_flight = jobs.in_flight(project, stages.EMBED)
    if resend:
        for item in in_flight:
            send(item, item.attempts)
    room = cap - len(in_flight)
    if room <= 0:
        return 0
    waiting = jobs.waiting(project, stages.EMBED, room)
    by_job: dict[str, list[str]] = {}
    for item in waiting:
        by_job.setdefault(item.job_id, []).append(item.key)
    for job_id, keys in by_job.items():
        jobs.start_items(job_id, stages.EMBED, keys)
    for item in waiting:
        send(item, item.attempts + 1)
    return len(waiting)
