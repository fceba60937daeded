"""Models: a classifier head trained on a discovery job's labelled windows (its id is its
training job's), its validation metrics and its files (BirdNET-Analyzer's custom
classifier among them) as download links."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from bdisc.app.job_records import TRAIN
from bdisc.app.keys import models_prefix
from bdisc.app.messages import JOB_ID, SubmitTraining, TrainParams
from bdisc.errors import NotFound
from bdisc.training.metrics import METRICS_JSON
from bdisc.training.model_file import MODEL_JSON
from gateway import commands
from gateway.deps import Deps, DepsDep, ExpiresS, ProjectDep
from gateway.routes.analyses import discovery_job, training_job

router = APIRouter(prefix="/v1/projects/{project}/models", tags=["models"])


class TrainRequest(TrainParams):
    """Train a head on one discovery job's labelled windows (cluster labels of its
    deployments and review groups, and per-window labels; ``Noise``, ``Other``,
    ``Background`` and ``Silence`` are negatives, not classes)."""

    discovery_job: str = Field(pattern=JOB_ID, description="the labelled discovery job")


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def train(project: ProjectDep, deps: DepsDep, request: TrainRequest) -> dict[str, str]:
    """Train a model; follow it at GET .../models/{model_id} (or GET .../jobs/{job_id})."""
    discovery = discovery_job(deps, project.id, request.discovery_job)
    options = TrainParams.model_validate(request.model_dump(exclude={"discovery_job"}))
    command = SubmitTraining(project=project.id, discovery_job=discovery.id, options=options)
    model_id = commands.submit(deps, command)
    return {"model_id": model_id, "job_id": model_id, "status": "submitted"}


class ModelSummary(BaseModel):
    model_id: str
    status: str
    created_at: str
    discovery_job: str


@router.get("")
def list_models(project: ProjectDep, deps: DepsDep) -> dict[str, list[ModelSummary]]:
    """The project's models (training jobs), oldest first."""
    return {
        "models": [
            ModelSummary(
                model_id=j.id,
                status=j.status,
                created_at=j.created_at.isoformat(),
                discovery_job=str(j.params.get("discovery_job", "")),
            )
            for j in deps.jobs.jobs(project.id)
            if j.kind == TRAIN
        ]
    }


class ModelOut(BaseModel):
    model_id: str
    status: str
    error: str = ""
    created_at: str
    discovery_job: str
    options: dict[str, Any] = {}
    classes: list[str] = []
    metrics: dict[str, Any] | None = Field(
        default=None, description="summary (macro averages) and one row per class"
    )
    training_set: dict[str, Any] | None = None
    base_model: dict[str, Any] | None = None
    files: dict[str, str] = Field(default_factory=dict, description="name -> download link")


@router.get("/{model_id}", response_model=ModelOut)
def get_model(
    project: ProjectDep, deps: DepsDep, model_id: str, expires_s: ExpiresS = 3600
) -> ModelOut:
    """A model's training job and, once trained, its classes, validation metrics,
    training set and every file of its folder (head.npz, model.json, metrics,
    CustomClassifier.tflite with its labels and params) as time-limited links."""
    job = training_job(deps, project.id, model_id)
    out = ModelOut(
        model_id=job.id,
        status=job.status,
        error=job.error,
        created_at=job.created_at.isoformat(),
        discovery_job=str(job.params.get("discovery_job", "")),
        options=dict(job.params.get("options") or {}),
    )
    if job.status != "done":
        return out
    prefix = models_prefix(project.id, job.id)
    meta = _json(deps, prefix + MODEL_JSON)
    report = _json(deps, prefix + METRICS_JSON)
    out.classes = [str(c) for c in meta.get("classes") or []]
    out.metrics = {"summary": meta.get("metrics") or {}, "classes": report.get("classes") or []}
    out.training_set = meta.get("training_set")
    out.base_model = meta.get("base_model")
    keys = deps.objects.list(prefix)
    out.files = {k[len(prefix) :]: deps.objects.url(k, expires_s) for k in keys}
    return out


def _json(deps: Deps, key: str) -> dict[str, Any]:
    """A JSON object of the model folder ({} if it is missing); NaN and infinities (a
    metric that could not be measured) become null, which JSON can carry."""
    try:
        data = json.loads(deps.objects.get_bytes(key))
    except NotFound:
        return {}
    finite = _finite(data)
    return finite if isinstance(finite, dict) else {}


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
