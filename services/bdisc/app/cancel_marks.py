"""Cancelled jobs as workers see them: the orchestrator leaves an empty object
(``keys.cancel_mark``) when it cancels a job, and a worker asks for it before it starts
an item of work. Work of a cancelled job still waiting in a queue (a 10,000-recording
job's embeds, say) is then acknowledged and dropped in milliseconds instead of costing
the replicas hours that other projects wait for. One HEAD request per item; a mark, once
seen, is remembered (a cancelled job is never retried: ``Orchestrator.retry_failed``).
Work already running finishes: its outcome is recorded and nothing follows from it.
"""

from __future__ import annotations

from bdisc.app.keys import cancel_mark
from bdisc.ports.object_store import ObjectStore

REMEMBERED = 10_000  # cancelled jobs a worker remembers (then it asks again)


class CancelMarks:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self._seen: set[tuple[str, str]] = set()

    def mark(self, project: str, job_id: str) -> None:
        self.objects.put_bytes(cancel_mark(project, job_id), b"")

    def cancelled(self, project: str, job_id: str) -> bool:
        if (project, job_id) in self._seen:
            return True
        if not self.objects.exists(cancel_mark(project, job_id)):
            return False
        if len(self._seen) >= REMEMBERED:
            self._seen.clear()
        self._seen.add((project, job_id))
        return True
