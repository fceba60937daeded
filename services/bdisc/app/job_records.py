"""A job's record as its command describes it: written by the gateway when it accepts
the command (so the job is visible at once, ``queued``, whatever the backlog) and by the
orchestrator when it takes it (idempotent: the first one writes it)."""

from __future__ import annotations

from bdisc.app import stages
from bdisc.app.messages import (
    SubmitClassify,
    SubmitDiscovery,
    SubmitDuplicates,
    SubmitEvaluation,
    SubmitExport,
    SubmitSearch,
    SubmitSuggest,
    SubmitTraining,
)
from bdisc.ports.job_store import JobStore

PLAN_ITEM = "plan"
DISCOVER, EXPORT, EVALUATE = "discover", "export", "evaluate"  # job kinds
TRAIN, CLASSIFY, SEARCH, DUPLICATES, SUGGEST = (
    "train",
    "classify",
    "search",
    "duplicates",
    "suggest",
)

SingleItem = (
    SubmitExport
    | SubmitEvaluation
    | SubmitTraining
    | SubmitClassify
    | SubmitSearch
    | SubmitDuplicates
    | SubmitSuggest
)
Submission = SubmitDiscovery | SingleItem

# A job of one work item: its kind, and the stage (the item's key) that does it.
SINGLE_ITEM: dict[type[SingleItem], tuple[str, str]] = {
    SubmitExport: (EXPORT, stages.EXPORT),
    SubmitEvaluation: (EVALUATE, stages.EVALUATE),
    SubmitTraining: (TRAIN, stages.TRAIN),
    SubmitClassify: (CLASSIFY, stages.TRAIN),
    SubmitSearch: (SEARCH, stages.TRAIN),
    SubmitDuplicates: (DUPLICATES, stages.TRAIN),
    SubmitSuggest: (SUGGEST, stages.TRAIN),
}


def record_submission(jobs: JobStore, job_id: str, command: Submission) -> bool:
    """Create the job, queued, with its first item pending; False if it exists."""
    if isinstance(command, SubmitDiscovery):
        params = {"prefix": command.prefix, **command.spec.as_dict()}
        items = [(PLAN_ITEM, PLAN_ITEM)]
        return jobs.create_job(job_id, command.project, DISCOVER, params, items, stages.INGEST)
    kind, stage = SINGLE_ITEM[type(command)]
    params = command.model_dump(mode="json")
    return jobs.create_job(job_id, command.project, kind, params, [(stage, stage)], stage)
