"""Training data from a reviewed discovery job: export clips, read the clips manifest."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, status

from bdisc.app.keys import trainset_prefix
from bdisc.app.messages import ExportParams, SubmitExport
from bdisc.discovery.export import MANIFEST
from bdisc.errors import NotFound
from gateway import commands
from gateway.deps import DepsDep, ExpiresS, OwnedJob

router = APIRouter(prefix="/v1/projects/{project}/jobs/{job_id}", tags=["training data"])


@router.post("/export", status_code=status.HTTP_202_ACCEPTED)
def export(job: OwnedJob, deps: DepsDep, request: ExportParams) -> dict[str, str]:
    """Cut the clips of every labelled cluster into the job's training set (one folder per
    label). Run it again after changing labels: clips are moved, added and removed to
    match. Follow the returned export job at GET /jobs/{export_job_id}."""
    command = SubmitExport(project=job.project, discovery_job=job.id, options=request)
    return {"job_id": commands.submit(deps, command), "status": "submitted"}


@router.get("/clips")
def clips(job: OwnedJob, deps: DepsDep, expires_s: ExpiresS = 3600) -> dict[str, Any]:
    """The training set's manifest: every clip with its label, source recording, times and
    cluster, and a time-limited download link."""
    job_id = job.id
    prefix = trainset_prefix(job.project, job_id)
    try:
        text = deps.objects.get_bytes(prefix + MANIFEST).decode()
    except NotFound as exc:
        raise NotFound(f"job {job_id} has no exported clips yet: POST .../export") from exc
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["url"] = deps.objects.url(prefix + row["clip"], expires_s)
    return {"manifest": deps.objects.url(prefix + MANIFEST, expires_s), "clips": rows}
