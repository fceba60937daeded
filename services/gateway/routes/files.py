"""Other uploads (detections, annotations, species maps) and evaluation jobs over them."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, UploadFile, status
from pydantic import BaseModel, Field

from bdisc.app import stages
from bdisc.app.keys import files_prefix
from bdisc.ports.message_bus import Message
from bdisc.ports.object_store import check_key
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


class EvaluationRequest(BaseModel):
    detections: str = Field(description="uploaded file or folder, e.g. detections/")
    truth: str = Field(description="uploaded file or folder of annotations")
    species_map: str | None = Field(None, description="uploaded species map (code, names)")
    granularity: Literal["file", "window", "sound", "minute"] = "file"
    threshold: float = Field(0.25, ge=0.0, le=1.0)
    min_overlap_s: float = Field(0.5, ge=0.0)


@router.post("/evaluations", status_code=status.HTTP_202_ACCEPTED)
def create_evaluation(
    project: ProjectDep, deps: DepsDep, request: EvaluationRequest
) -> dict[str, str]:
    """Score uploaded detections against uploaded annotations; follow it as a job, its
    tables, plots and report appear under results/evaluation/."""
    for name in (request.detections, request.truth, request.species_map):
        if name:
            check_key(name.rstrip("/"))
    job_id = uuid.uuid4().hex
    deps.publish(
        Message(
            stages.EVENTS,
            job_id,
            f"{job_id}:submit",
            {"kind": stages.SUBMIT_EVALUATION, "project": project.id, **request.model_dump()},
        )
    )
    return {"job_id": job_id, "status": "submitted"}
