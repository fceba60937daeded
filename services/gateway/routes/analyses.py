"""Jobs over a finished discovery job's stored embeddings and labels, run by the training
service: classify with a trained model, search by example, list duplicates, suggest
windows to label. Search and suggestions are labelled as review groups of the discovery
job (``search-<job>``, ``suggest-<job>``) with GET/PUT .../review/{folder}.

The gateway refuses what it can tell at once (another project's or an unknown job or
model: 404; one still at work: 409); the orchestrator checks again when it takes the job.
"""

from __future__ import annotations

import contextlib
import re

from fastapi import APIRouter, status
from pydantic import Field

from bdisc.app.job_records import DISCOVER, TRAIN
from bdisc.app.keys import review_group
from bdisc.app.messages import (
    JOB_ID,
    ClassifyParams,
    DuplicatesParams,
    SearchParams,
    SubmitClassify,
    SubmitDuplicates,
    SubmitSearch,
    SubmitSuggest,
    SuggestParams,
)
from bdisc.errors import Conflict, NotFound
from bdisc.ports.job_store import FINAL, JobRecord
from gateway import commands
from gateway.deps import Deps, DepsDep, OwnedJob, ProjectDep

router = APIRouter(prefix="/v1/projects/{project}", tags=["training"])


def job_of(deps: Deps, project: str, job_id: str, kind: str, what: str) -> JobRecord:
    """The project's job of this kind, else NotFound (another project's job is unknown;
    a name that is no job id is not looked up)."""
    job = None
    if re.fullmatch(JOB_ID, job_id):
        with contextlib.suppress(NotFound):
            job = deps.jobs.job(job_id)
    if job is None or job.project != project or job.kind != kind:
        raise NotFound(f"no {what} {job_id} in project {project}")
    return job


def finished_discovery(job: JobRecord) -> JobRecord:
    """The job, if it is a finished discovery job: 404 for another kind, 409 at work."""
    if job.kind != DISCOVER:
        raise NotFound(f"no discovery job {job.id} in project {job.project}")
    if job.status not in FINAL:
        raise Conflict(f"discovery job {job.id} is {job.status}: wait until it is done")
    return job


def discovery_job(deps: Deps, project: str, job_id: str) -> JobRecord:
    """A finished discovery job of the project: 404 if none, 409 while it is at work."""
    return finished_discovery(job_of(deps, project, job_id, DISCOVER, "discovery job"))


def training_job(deps: Deps, project: str, model_id: str) -> JobRecord:
    """The project's training job whose model has this id (any status): 404 if none."""
    return job_of(deps, project, model_id, TRAIN, "model")


def trained_model(deps: Deps, project: str, model_id: str) -> JobRecord:
    """A model of the project that is trained: 404 if none, 409 unless its job is done."""
    job = training_job(deps, project, model_id)
    if job.status != "done":
        raise Conflict(f"model {model_id} is {job.status}, not trained")
    return job


def _results(project: str, job_id: str) -> str:
    return f"/v1/projects/{project}/jobs/{job_id}/results"


def _review(project: str, discovery: str, folder: str) -> str:
    return f"/v1/projects/{project}/jobs/{discovery}/review/{folder}"


@router.post("/jobs/{job_id}/classify", status_code=status.HTTP_202_ACCEPTED)
def classify(job: OwnedJob, deps: DepsDep, request: ClassifyParams) -> dict[str, str]:
    """Apply a trained model to the discovery job's stored windows: detections per
    recording (``formats``: csv, table, audacity, kaleidoscope) in the new job's results."""
    discovery = finished_discovery(job)
    trained_model(deps, job.project, request.model_id)
    command = SubmitClassify(project=job.project, discovery_job=discovery.id, options=request)
    new = commands.submit(deps, command)
    return {"job_id": new, "status": "submitted", "results": _results(job.project, new)}


@router.post("/jobs/{job_id}/duplicates", status_code=status.HTTP_202_ACCEPTED)
def find_duplicates(
    job: OwnedJob, deps: DepsDep, request: DuplicatesParams | None = None
) -> dict[str, str]:
    """Recordings and stretches stored twice (duplicates.csv, and duplicates_exclude.csv
    of the copies to leave out) in the new job's results. An empty body: the defaults."""
    discovery = finished_discovery(job)
    options = request or DuplicatesParams()
    command = SubmitDuplicates(project=job.project, discovery_job=discovery.id, options=options)
    new = commands.submit(deps, command)
    return {"job_id": new, "status": "submitted", "results": _results(job.project, new)}


@router.post("/jobs/{job_id}/suggest", status_code=status.HTTP_202_ACCEPTED)
def suggest(job: OwnedJob, deps: DepsDep, request: SuggestParams) -> dict[str, str]:
    """The windows a trained model is least sure of, for labelling next: a review group
    ``suggest-<job>`` of the discovery job, one window per cluster (label each row)."""
    discovery = finished_discovery(job)
    trained_model(deps, job.project, request.model_id)
    command = SubmitSuggest(project=job.project, discovery_job=discovery.id, options=request)
    new = commands.submit(deps, command)
    folder = review_group("suggest", new)
    return {
        "job_id": new,
        "status": "submitted",
        "folder": folder,
        "review": _review(job.project, discovery.id, folder),
    }


class SearchRequest(SearchParams):
    """A search over one discovery job's stored windows: the job, and one example (a
    stored ``window`` or a span of uploaded audio, ``example``)."""

    discovery_job: str = Field(pattern=JOB_ID, description="the discovery job searched")


@router.post("/search", status_code=status.HTTP_202_ACCEPTED)
def search(project: ProjectDep, deps: DepsDep, request: SearchRequest) -> dict[str, str]:
    """The stored windows nearest to an example: matches.csv, montage.png and a review
    group ``search-<job>`` (one cluster: the matches) in the discovery job's results."""
    discovery = discovery_job(deps, project.id, request.discovery_job)
    options = SearchParams.model_validate(request.model_dump(exclude={"discovery_job"}))
    command = SubmitSearch(project=project.id, discovery_job=discovery.id, options=options)
    new = commands.submit(deps, command)
    folder = review_group("search", new)
    return {
        "job_id": new,
        "status": "submitted",
        "folder": folder,
        "review": _review(project.id, discovery.id, folder),
        "matches": _results(project.id, discovery.id),
    }
