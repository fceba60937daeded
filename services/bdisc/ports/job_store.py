"""Durable job state with one writer (the orchestrator): SQLite embedded, PostgreSQL deployed.

A job fans out into items (one per recording) that pass through stages (``embed``,
``cluster``, ...). Item states only move forward: pending -> running -> done | failed;
a late or redelivered "running" never overwrites "done", so at-least-once delivery is
harmless. ``group_settled`` is the fan-in question: is every item of this deployment
finished with this stage?

``with jobs.batch():`` is a unit of work: every call inside it (in this thread) shares
one transaction, committed when the block ends and rolled back whole when it raises;
outside one, each call is its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

ITEM_STATES = ("pending", "running", "done", "failed")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed")


@dataclass(frozen=True)
class JobRecord:
    id: str
    project: str
    kind: str
    params: dict[str, Any]
    status: str
    error: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ItemRecord:
    job_id: str
    key: str  # recording key in the audio bucket
    group: str  # deployment folder
    stage: str
    status: str
    attempts: int
    output: str  # object key of the stage's result
    error: str


class JobStore(Protocol):
    def batch(self) -> AbstractContextManager[None]:
        """A unit of work: the calls inside share one transaction (nested: the outer)."""
        ...

    def create_job(
        self,
        job_id: str,
        project: str,
        kind: str,
        params: dict[str, Any],
        items: Sequence[tuple[str, str]],
        stage: str,
    ) -> bool:
        """Create a job with (key, group) items pending at ``stage``; False if it exists."""
        ...

    def job(self, job_id: str) -> JobRecord: ...

    def jobs(self, project: str) -> list[JobRecord]: ...

    def set_job_status(self, job_id: str, status: str, error: str = "") -> None: ...

    def set_item(
        self,
        job_id: str,
        key: str,
        stage: str,
        status: str,
        *,
        group: str = "",
        output: str = "",
        error: str = "",
    ) -> bool:
        """Move an item forward; returns False when the change was refused (already final)."""
        ...

    def settle_items(
        self, job_id: str, stage: str, outcomes: Sequence[tuple[str, str, str, str, str]]
    ) -> None:
        """``set_item`` of many (key, group, status, output, error) outcomes at once, each
        status final (done or failed): a few statements, not one each."""
        ...

    def unsettled_groups(self, job_id: str, stage: str, groups: Sequence[str]) -> set[str]:
        """Of ``groups``, those with an item of ``stage`` not settled (``group_settled``
        of many in one question)."""
        ...

    def add_items(self, job_id: str, stage: str, items: Sequence[tuple[str, str, str, str]]) -> int:
        """Record (key, group, status, error) items not recorded yet; returns how many."""
        ...

    def discard_items(self, job_id: str, stage: str, keys: Sequence[str]) -> None:
        """Forget items so that the stage runs them again (re-clustering after a retry)."""
        ...

    def reset_failed(self, job_id: str, stage: str) -> list[str]:
        """Failed items of ``stage`` back to pending (a user's "retry"); returns their keys."""
        ...

    def items(
        self,
        job_id: str,
        stage: str | None = None,
        group: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[ItemRecord]:
        """A job's items (of a stage, a group, a status), by stage and key; at most
        ``limit`` (a job of 280,000 recordings is not read whole to show its errors)."""
        ...

    def progress(self, job_id: str) -> dict[str, dict[str, int]]:
        """{stage: {status: count}}."""
        ...

    def group_settled(self, job_id: str, stage: str, group: str) -> bool: ...

    # -- capped dispatch (``app/embed_dispatch.py``): pending = not sent, running = sent --

    def in_flight(self, project: str, stage: str) -> list[ItemRecord]:
        """The items of ``stage`` sent and not settled (``running``) of the project's
        running jobs."""
        ...

    def waiting(self, project: str, stage: str, limit: int) -> list[ItemRecord]:
        """At most ``limit`` items of ``stage`` not sent yet (``pending``) of the
        project's running jobs: the oldest job's first, by key."""
        ...

    def start_items(self, job_id: str, stage: str, keys: Sequence[str]) -> None:
        """Pending items -> running (sent), each attempt counted."""
        ...

    def backlog(self, stage: str) -> int:
        """Items of ``stage`` not settled (waiting or in flight) of every running job:
        what the workers of the stage have yet to do (the autoscaler's measure)."""
        ...
