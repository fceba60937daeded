"""A job's record as its command describes it: written by the gateway when it accepts
the command (so the job is visible at once, ``queued``, whatever the backlog) and by the
orchestrator when it takes it (idempotent: the first one writes it)."""

from __future__ import annotations

from bdisc.app import stages
from bdisc.app.messages import SubmitDiscovery, SubmitEvaluation, SubmitExport
from bdisc.ports.job_store import JobStore

PLAN_ITEM = "plan"
DISCOVER, EXPORT, EVALUATE = "discover", "export", "evaluate"  # job kinds

Submission = SubmitDiscovery | SubmitExport | SubmitEvaluation


def record_submission(jobs: JobStore, job_id: str, command: Submission) -> bool:
    """Create the job, queued, with its first item pending; False if it exists."""
    if isinstance(command, SubmitDiscovery):
        params = {"prefix": command.prefix, **command.spec.as_dict()}
        items = [(PLAN_ITEM, PLAN_ITEM)]
        return jobs.create_job(job_id, command.project, DISCOVER, params, items, stages.INGEST)
    export = isinstance(command, SubmitExport)
    kind, stage = (EXPORT, stages.EXPORT) if export else (EVALUATE, stages.EVALUATE)
    params = command.model_dump(mode="json")
    return jobs.create_job(job_id, command.project, kind, params, [(stage, stage)], stage)
