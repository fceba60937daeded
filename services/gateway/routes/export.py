"""Training data from a reviewed discovery job: export clips, read the clips manifest."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from bdisc.app import stages
from bdisc.app.keys import trainset_prefix
from bdisc.discovery.export import MANIFEST
from bdisc.errors import NotFound
from bdisc.ports.message_bus import Message
from gateway.deps import DepsDep, ProjectDep
from gateway.routes.jobs import _own_job

router = APIRouter(prefix="/v1/projects/{project}/jobs/{job_id}", tags=["training data"])


class ExportRequest(BaseModel):
    pad_s: float = Field(0.0, ge=0.0, le=10.0, description="seconds added to both ends")
    sample_rate: int | None = Field(
        None, ge=8000, le=384_000, description="resample the clips; default: the recording's"
    )


@router.post("/export", status_code=status.HTTP_202_ACCEPTED)
def export(
    project: ProjectDep, deps: DepsDep, job_id: str, request: ExportRequest
) -> dict[str, str]:
    """Cut the clips of every labelled cluster into the job's training set (one folder per
    label). Run it again after changing labels: clips are moved, added and removed to
    match. Follow the returned export job at GET /jobs/{export_job_id}."""
    _own_job(deps, project.id, job_id)
    export_job = uuid.uuid4().hex
    deps.publish(
        Message(
            stages.EVENTS,
            export_job,
            f"{export_job}:submit",
            {
                "kind": stages.SUBMIT_EXPORT,
                "project": project.id,
                "discovery_job": job_id,
                **request.model_dump(),
            },
        )
    )
    return {"job_id": export_job, "status": "submitted"}


@router.get("/clips")
def clips(project: ProjectDep, deps: DepsDep, job_id: str, expires_s: int = 3600) -> dict[str, Any]:
    """The training set's manifest: every clip with its label, source recording, times and
    cluster, and a time-limited download link."""
    _own_job(deps, project.id, job_id)
    prefix = trainset_prefix(project.id, job_id)
    try:
        text = deps.objects.get_bytes(prefix + MANIFEST).decode()
    except NotFound as exc:
        raise NotFound(f"job {job_id} has no exported clips yet: POST .../export") from exc
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["url"] = deps.objects.url(prefix + row["clip"], expires_s)
    return {"manifest": deps.objects.url(prefix + MANIFEST, expires_s), "clips": rows}
