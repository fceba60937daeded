"""Other uploads (detections, annotations, species maps) and evaluation jobs over them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, UploadFile, status

from bdisc.app.keys import files_prefix
from bdisc.app.messages import EvaluationParams, SubmitEvaluation
from bdisc.ports.object_store import check_key
from gateway import commands
from gateway.deps import DepsDep, ProjectDep
from gateway.uploads import receive

router = APIRouter(prefix="/v1/projects/{project}", tags=["evaluation"])


@router.post("/files", status_code=status.HTTP_201_CREATED)
def upload_file(
    project: ProjectDep,
    deps: DepsDep,
    file: UploadFile,
    path: Annotated[str, Query(description="e.g. truth/annotations.csv")],
) -> dict[str, object]:
    """Upload a table: detections (BirdNET-Analyzer CSVs, Raven, ...), annotations or a
    species map. Folders of them are evaluated together."""
    rel = check_key(path)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "upload"
        size = receive(file.file, local, deps.max_upload_bytes)
        deps.objects.put_file(files_prefix(project.id) + rel, local)
    return {"path": rel, "bytes": size}


@router.post("/evaluations", status_code=status.HTTP_202_ACCEPTED)
def create_evaluation(
    project: ProjectDep, deps: DepsDep, request: EvaluationParams
) -> dict[str, str]:
    """Score uploaded detections against uploaded annotations; follow it as a job, its
    tables, plots and report appear under results/evaluation/."""
    for name in (request.detections, request.truth, request.species_map):
        if name:
            check_key(name.rstrip("/"))
    command = SubmitEvaluation(project=project.id, request=request)
    return {"job_id": commands.submit(deps, command), "status": "submitted"}
