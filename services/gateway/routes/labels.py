"""Labels as data: a job's labels by deployment (``folder``; sound types: ``folder=``),
written with the revision they were read at (``If-Match``, from the ``ETag`` of the read;
a stale write gets 409 with the current revision), their history, undo, and the paper's
Folder/Cluster/Label sheet as export and import."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from bdisc.app.review_folders import review_folders
from bdisc.app.review_labels import render_review
from bdisc.discovery.sheets import from_sheet_cell, sheet_cell
from bdisc.errors import ConfigError, NotFound
from bdisc.ports.job_store import JobRecord
from bdisc.ports.label_store import Change, LabelRecord, Target
from gateway.deps import Author, Deps, DepsDep, IfMatch, OwnedJob, etag, revision_of

router = APIRouter(prefix="/v1/projects/{project}/jobs/{job_id}", tags=["labels"])

Folder = Annotated[
    str, Query(description="the deployment; empty for the job's sound types", max_length=256)
]


class LabelOut(BaseModel):
    folder: str
    target: str
    label: str
    author: str
    source: str
    revision: int
    at: str
    previous: str = ""


class SheetOut(BaseModel):
    folder: str
    revision: int
    labels: list[LabelOut]


class ChangeIn(BaseModel):
    target: str = Field(
        description="cluster:<n>, type:<n> (folder empty) or window:<recording>:<start>:<end>",
        max_length=1200,
    )
    label: str = Field(description="empty: remove the label", max_length=200)


class ChangesIn(BaseModel):
    changes: list[ChangeIn] = Field(min_length=1, max_length=10_000)
    source: Literal["cluster", "window", "suggested-accepted"] = "cluster"


def _out(r: LabelRecord) -> LabelOut:
    return LabelOut(
        folder=r.target.folder,
        target=r.target.key,
        label=r.label,
        author=r.author,
        source=r.source,
        revision=r.revision,
        at=r.at.isoformat(),
        previous=r.previous,
    )


def _folder(deps: Deps, job: JobRecord, folder: str) -> str:
    """A deployment the job clustered or a review group of its searches and suggestions,
    or "" (the job's sound types)."""
    if folder and folder not in review_folders(deps.jobs, job):
        raise NotFound(f"job {job.id} has no clustered deployment or review group {folder!r}")
    return folder


def _saved(
    deps: Deps, job: JobRecord, folder: str, revision: int, response: Response
) -> dict[str, int]:
    """After a write: the deployment's sheet shows its labels; the new revision is the
    ETag to send with the next write."""
    if folder:
        render_review(deps.objects, deps.labels, job.project, job.id, folder)
    response.headers["ETag"] = etag(revision)
    return {"revision": revision}


@router.get("/labels", response_model=None)
def get_labels(
    job: OwnedJob, deps: DepsDep, response: Response, folder: Folder | None = None
) -> SheetOut | dict[str, list[LabelOut]]:
    """The job's current labels; with ``folder``, one sheet and its revision (ETag)."""
    if folder is None:
        return {"labels": [_out(r) for r in deps.labels.labels(job.id)]}
    folder = _folder(deps, job, folder)
    revision = deps.labels.revision(job.id, folder)
    response.headers["ETag"] = etag(revision)
    labels = [_out(r) for r in deps.labels.labels(job.id, folder)]
    return SheetOut(folder=folder, revision=revision, labels=labels)


@router.patch("/labels")
def change_labels(
    job: OwnedJob,
    deps: DepsDep,
    response: Response,
    body: ChangesIn,
    folder: Folder = "",
    if_match: IfMatch = None,
    author: Author = "api",
) -> dict[str, int]:
    """Label (or unlabel) clusters, sound types or single windows of one sheet, as one
    new revision. ``If-Match`` names the revision read: 409 if someone saved since."""
    folder = _folder(deps, job, folder)
    changes = [Change(Target.from_key(folder, c.target), c.label) for c in body.changes]
    revision = deps.labels.write(
        job.id, folder, changes, author, body.source, revision_of(if_match)
    )
    return _saved(deps, job, folder, revision, response)


@router.get("/labels/history")
def label_history(job: OwnedJob, deps: DepsDep, folder: Folder = "") -> dict[str, list[LabelOut]]:
    """Every change of one sheet, oldest first (``previous``: the label it replaced)."""
    folder = _folder(deps, job, folder)
    return {"changes": [_out(r) for r in deps.labels.history(job.id, folder)]}


@router.post("/labels:undo")
def undo_labels(
    job: OwnedJob,
    deps: DepsDep,
    response: Response,
    folder: Folder = "",
    if_match: IfMatch = None,
    author: Author = "api",
) -> dict[str, int]:
    """Revert the sheet's latest change that is not undone yet (as a new revision)."""
    folder = _folder(deps, job, folder)
    revision = deps.labels.undo(job.id, folder, author, revision_of(if_match))
    return _saved(deps, job, folder, revision, response)


@router.get("/labels.csv", response_class=PlainTextResponse)
def export_sheet(job: OwnedJob, deps: DepsDep) -> PlainTextResponse:
    """The cluster labels as the paper's sheet: Folder, Cluster, Label."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Folder", "Cluster", "Label"])
    for r in deps.labels.labels(job.id):
        if r.target.kind == "cluster":
            writer.writerow([r.target.folder, r.target.number, sheet_cell(r.label)])
    return PlainTextResponse(out.getvalue(), media_type="text/csv")


@router.post("/labels:import")
def import_sheet(
    job: OwnedJob,
    deps: DepsDep,
    sheet: Annotated[str, Body(media_type="text/csv", max_length=10_000_000)],
    author: Author = "api",
) -> dict[str, object]:
    """Labels from a Folder, Cluster (or "Cluster #"), Label sheet (the paper's format, or
    a sheet exported here): one revision per deployment, source ``import``. Rows with an
    empty label remove that cluster's label."""
    try:
        by_folder = _sheet_changes(sheet)
    except csv.Error as exc:
        raise ConfigError(f"not a CSV sheet: {exc}") from exc
    for folder in by_folder:
        _folder(deps, job, folder)  # all or nothing: check every folder first
    revisions = {}
    for folder, changes in by_folder.items():
        revisions[folder] = deps.labels.write(job.id, folder, changes, author, "import", None)
        render_review(deps.objects, deps.labels, job.project, job.id, folder)
    return {"imported": sum(len(c) for c in by_folder.values()), "revisions": revisions}


def _sheet_changes(sheet: str) -> dict[str, list[Change]]:
    """A Folder, Cluster (or Cluster #), Label sheet's rows as changes, by folder."""
    by_folder: dict[str, list[Change]] = {}
    reader = csv.DictReader(io.StringIO(sheet.lstrip("\ufeff"), newline=""))
    columns = {c.strip().casefold(): c for c in reader.fieldnames or []}
    cluster_col = columns.get("cluster") or columns.get("cluster #")
    folder_col, label_col = columns.get("folder"), columns.get("label")
    if not (cluster_col and folder_col and label_col):
        raise ConfigError("the sheet needs columns Folder, Cluster (or Cluster #) and Label")
    for line, row in enumerate(reader, start=2):
        folder = (row[folder_col] or "").strip()
        try:
            cluster = int(float(row[cluster_col] or ""))
        except (ValueError, OverflowError) as exc:
            raise ConfigError(f"line {line}: cluster {row[cluster_col]!r} is not a number") from exc
        label = from_sheet_cell((row[label_col] or "").strip())
        change = Change(Target.cluster(folder, cluster), label)
        by_folder.setdefault(folder, []).append(change)
    return by_folder
