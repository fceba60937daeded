"""A job's results (download links) and its review sheets (read and write)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from bdisc.app.keys import job_results_prefix, results_prefix
from bdisc.app.review_labels import render_review
from bdisc.discovery.labelled_sheet import cluster_labels, sheet_rows, with_labels
from bdisc.discovery.sheets import REVIEW_FILE
from bdisc.errors import ConfigError, NotFound
from bdisc.ports.label_store import Change, Target
from gateway.deps import (
    Author,
    Deps,
    DepsDep,
    ExpiresS,
    IfMatch,
    OwnedJob,
    etag,
    revision_of,
)

router = APIRouter(prefix="/v1/projects/{project}/jobs/{job_id}", tags=["results"])


class ReviewRow(BaseModel):
    Folder: str
    Cluster: int
    Label: str = ""


@router.get("/results")
def results(job: OwnedJob, deps: DepsDep, expires_s: ExpiresS = 3600) -> dict[str, dict[str, str]]:
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
    response: Response,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response | list[dict[str, str]]:
    """The review sheet of one deployment (Folder, Cluster, Label, Size, TopLabels, ...),
    its labels as the label store holds them; the ETag is their revision."""
    text, revision = _sheet(deps, job.project, job.id, folder)
    if format == "csv":
        return PlainTextResponse(text, media_type="text/csv", headers={"ETag": etag(revision)})
    response.headers["ETag"] = etag(revision)
    return sheet_rows(text)


@router.put("/review/{folder}")
def put_review(
    job: OwnedJob,
    deps: DepsDep,
    folder: str,
    response: Response,
    labels: Annotated[list[ReviewRow], Body()],
    if_match: IfMatch = None,
    author: Author = "api",
) -> dict[str, int]:
    """Set the labels of one deployment's clusters (kept in the label store; the sheet
    shows them). With ``If-Match`` (the ETag of the sheet read), a stale save gets 409."""
    text, _ = _sheet(deps, job.project, job.id, folder)
    clusters = {int(r["Cluster"]) for r in sheet_rows(text)}
    unknown = sorted({lab.Cluster for lab in labels} - clusters)
    if any(lab.Folder != folder for lab in labels) or unknown:
        raise ConfigError(
            f"labels must name folder {folder!r} and its clusters; unknown clusters: {unknown}"
        )
    changes = [Change(Target.cluster(folder, lab.Cluster), lab.Label) for lab in labels]
    expected = None if if_match is None else revision_of(if_match)
    revision = deps.labels.write(job.id, folder, changes, author, "cluster", expected)
    render_review(deps.objects, deps.labels, job.project, job.id, folder)
    response.headers["ETag"] = etag(revision)
    return {"labelled": len(cluster_labels(deps.labels, job.id, folder))}


def _sheet(deps: Deps, project: str, job_id: str, folder: str) -> tuple[str, int]:
    """A deployment's review sheet with the store's labels, and their revision."""
    try:
        text = deps.objects.get_bytes(_review_key(project, job_id, folder)).decode("utf-8")
    except NotFound as exc:
        raise NotFound(f"no review sheet for {folder}: is the job done?") from exc
    revision = deps.labels.revision(job_id, folder)
    return with_labels(text, cluster_labels(deps.labels, job_id, folder)), revision
