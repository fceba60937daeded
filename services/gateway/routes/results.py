"""A job's results (download links) and its review sheets (read and write)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from bdisc.app.keys import job_results_prefix, results_prefix
from bdisc.discovery.sheets import REVIEW_FILE
from bdisc.errors import ConfigError, NotFound
from gateway.deps import DepsDep, OwnedJob

router = APIRouter(prefix="/v1/projects/{project}/jobs/{job_id}", tags=["results"])


class ReviewRow(BaseModel):
    Folder: str
    Cluster: int
    Label: str = ""


@router.get("/results")
def results(job: OwnedJob, deps: DepsDep, expires_s: int = 3600) -> dict[str, dict[str, str]]:
    """Every result file, per deployment, with a time-limited download link."""
    root = job_results_prefix(job.project, job.id)
    return {
        "files": {k[len(root) :]: deps.objects.url(k, expires_s) for k in deps.objects.list(root)}
    }


def _review_key(project: str, job_id: str, folder: str) -> str:
    return results_prefix(project, job_id, folder) + REVIEW_FILE


@router.get("/review/{folder}", response_model=None)
def get_review(
    job: OwnedJob,
    deps: DepsDep,
    folder: str,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response | list[dict[str, str]]:
    """The review sheet of one deployment (Folder, Cluster, Label, Size, TopLabels, ...)."""
    text = deps.objects.get_bytes(_review_key(job.project, job.id, folder)).decode()
    if format == "csv":
        return PlainTextResponse(text, media_type="text/csv")
    return list(csv.DictReader(io.StringIO(text)))


@router.put("/review/{folder}")
def put_review(
    job: OwnedJob,
    deps: DepsDep,
    folder: str,
    labels: Annotated[list[ReviewRow], Body()],
) -> dict[str, int]:
    """Set the labels of one deployment's clusters (other columns are kept)."""
    key = _review_key(job.project, job.id, folder)
    try:
        rows = list(csv.DictReader(io.StringIO(deps.objects.get_bytes(key).decode())))
    except NotFound as exc:
        raise NotFound(f"no review sheet for {folder}: is the job done?") from exc
    clusters = {int(r["Cluster"]) for r in rows}
    unknown = sorted({lab.Cluster for lab in labels} - clusters)
    if any(lab.Folder != folder for lab in labels) or unknown:
        raise ConfigError(
            f"labels must name folder {folder!r} and its clusters; unknown clusters: {unknown}"
        )
    new = {lab.Cluster: lab.Label for lab in labels}
    for r in rows:
        r["Label"] = new.get(int(r["Cluster"]), r["Label"])
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    deps.objects.put_bytes(key, out.getvalue().encode(), content_type="text/csv")
    return {"labelled": sum(1 for r in rows if r["Label"])}
