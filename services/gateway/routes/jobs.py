"""Discovery jobs: create (with every parameter of ``bdisc discover``), status, cancel, retry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from bdisc.app import stages
from bdisc.app.job_records import DUPLICATES
from bdisc.app.messages import SubmitDiscovery
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.errors import Conflict
from bdisc.ports.object_store import check_key
from gateway import commands
from gateway.deps import DepsDep, OwnedJob, ProjectDep
from gateway.routes.analyses import job_of

router = APIRouter(prefix="/v1/projects/{project}/jobs", tags=["jobs"])


class JobRequest(BaseModel):
    prefix: str = Field("", description="only recordings under this folder, e.g. siteA/")
    analysis: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "windows and scores: overlap_s, min_len_s, bandpass {fmin, fmax}, sensitivity, "
            "species, lat, lon, week, ... (as bdisc discover)"
        ),
    )
    cluster: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "method (umap|jsd), n_neighbors, min_dist, n_components, metric, pca_components, "
            "seed, min_cluster_size (default automatic), min_samples, selection"
        ),
    )
    subset: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "which recordings (timestamps from file names): hours '6-9', start_date, "
            "end_date ('2023-06-01'), sample (fraction per deployment), seed"
        ),
    )
    prune: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "which windows are clustered: drop_silence_db, labels (patterns), any_bird, "
            "min_conf, top_n_per_file"
        ),
    )
    review: dict[str, Any] = Field(
        default_factory=dict,
        description="montage_cap, audio_per_cluster, fmin, fmax, cmap (spectrograms)",
    )
    link: dict[str, Any] = Field(
        default_factory=dict,
        description="threshold: cosine distance under which clusters become one sound type",
    )
    exclude_duplicates: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="a finished duplicates job of the project: the copies it lists are left out",
    )


MAX_FAILED_SHOWN = 1000  # recordings listed with their errors (progress counts them all)


class JobOut(BaseModel):
    job_id: str
    status: str
    error: str = ""
    progress: dict[str, dict[str, int]] = {}
    failed: list[dict[str, str]] = []


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def create_job(project: ProjectDep, deps: DepsDep, request: JobRequest) -> JobOut:
    """Start a discovery job over the project's recordings (under ``prefix``). The job
    appears in GET .../jobs/{job_id} as soon as the orchestrator has planned it."""
    spec = DiscoverySpec.from_dict(request.model_dump(exclude={"prefix"}))  # ConfigError: 422
    if spec.exclude_duplicates is not None:  # 404 unless a duplicates job of the project
        job_of(deps, project.id, spec.exclude_duplicates, DUPLICATES, "duplicates job")
    if request.prefix:
        check_key(request.prefix.rstrip("/"))
    command = SubmitDiscovery(project=project.id, prefix=request.prefix, spec=spec)
    return JobOut(job_id=commands.submit(deps, command), status="submitted")


class JobSummary(BaseModel):
    job_id: str
    kind: str
    status: str
    created_at: str


@router.get("")
def list_jobs(project: ProjectDep, deps: DepsDep) -> dict[str, list[JobSummary]]:
    """The project's jobs (discovery, export, evaluation), oldest first."""
    return {
        "jobs": [
            JobSummary(
                job_id=j.id, kind=j.kind, status=j.status, created_at=j.created_at.isoformat()
            )
            for j in deps.jobs.jobs(project.id)
        ]
    }


@router.get("/{job_id}", response_model=JobOut)
def job_status(job: OwnedJob, deps: DepsDep) -> JobOut:
    failed = [
        {"recording": i.key.split("/audio/", 1)[-1], "error": i.error}
        for i in deps.jobs.items(job.id, stages.EMBED, status="failed", limit=MAX_FAILED_SHOWN)
    ]
    return JobOut(
        job_id=job.id,
        status=job.status,
        error=job.error,
        progress=deps.jobs.progress(job.id),
        failed=failed,
    )


@router.post("/{job_id}:cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel(job: OwnedJob, deps: DepsDep) -> dict[str, str]:
    """Stop a job at work (a finished job keeps its outcome: 409)."""
    if job.status not in ("queued", "running"):
        raise Conflict(f"job {job.id} is {job.status}: only a job at work can be cancelled")
    commands.cancel(deps, job.id)
    return {"job_id": job.id, "status": "cancelling"}


@router.post("/{job_id}:retry", status_code=status.HTTP_202_ACCEPTED)
def retry_failed(job: OwnedJob, deps: DepsDep) -> dict[str, str]:
    """Run the recordings that failed through embedding again (a cancelled job stays
    cancelled: 409)."""
    if job.status == "cancelled":
        raise Conflict(f"job {job.id} was cancelled: submit it again instead")
    commands.retry_failed(deps, job.id)
    return {"job_id": job.id, "status": "retrying failed recordings"}
