"""The gateway's commands to the orchestrator (the one writer of job state): one
function each, one typed message of the contract on the events queue."""

from __future__ import annotations

import uuid

from bdisc.app.job_records import Submission, record_submission
from bdisc.app.messages import Cancel, RetryFailed, to_message
from gateway.deps import Deps


def submit(deps: Deps, command: Submission) -> str:
    """Ask for a new job; returns its id. The job is visible at once (``queued``) until
    the orchestrator takes it, whatever the queue's backlog."""
    job_id = uuid.uuid4().hex
    record_submission(deps.jobs, job_id, command)
    deps.publish(to_message(job_id, f"{job_id}:submit", command))
    return job_id


def cancel(deps: Deps, job_id: str) -> None:
    deps.publish(to_message(job_id, f"{job_id}:cancel", Cancel()))


def retry_failed(deps: Deps, job_id: str) -> None:
    """Each request is a retry of its own (a new key), unlike a redelivered one."""
    deps.publish(to_message(job_id, f"{job_id}:retry:{uuid.uuid4().hex[:8]}", RetryFailed()))
