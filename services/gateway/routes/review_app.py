"""What the review app reads: a job's deployments with their review progress, every
window of a deployment for the map, a cluster's members for its tiles, the project's
label names for completion, and links to play recordings (ranged reads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bdisc.app.keys import audio_prefix, results_prefix
from bdisc.app.review_folders import review_folders
from bdisc.app.review_views import cluster_members, deployment_summary, label_names, map_points
from bdisc.discovery.sheets import CLUSTERS_FILE, WindowRow, parse_clusters
from bdisc.errors import NotFound
from bdisc.model.birdnet import species_names
from bdisc.ports.object_store import check_key
from gateway.deps import Deps, DepsDep, OwnedJob, ProjectDep

router = APIRouter(prefix="/v1/projects/{project}", tags=["review app"])


def _rows(deps: Deps, project: str, job_id: str, folder: str) -> list[WindowRow]:
    key = results_prefix(project, job_id, folder) + CLUSTERS_FILE
    try:
        return parse_clusters(deps.objects.get_bytes(key).decode("utf-8"))
    except NotFound as exc:
        raise NotFound(f"job {job_id} has no clusters for {folder!r}") from exc


@router.get("/jobs/{job_id}/deployments")
def deployments(job: OwnedJob, deps: DepsDep) -> dict[str, list[dict[str, Any]]]:
    """The job's clustered deployments, then the review groups of its searches and
    suggestions (``search-<job>``, ``suggest-<job>``), each with its review progress."""
    folders = review_folders(deps.jobs, job)
    return {
        "deployments": [
            deployment_summary(
                folder,
                _rows(deps, job.project, job.id, folder),
                deps.labels.labels(job.id, folder),
            )
            for folder in folders
        ]
    }


@router.get("/jobs/{job_id}/windows/{folder}")
def windows(job: OwnedJob, deps: DepsDep, folder: str) -> dict[str, Any]:
    """Every window of a deployment, as columns: the map's points."""
    return map_points(_rows(deps, job.project, job.id, folder))


@router.get("/jobs/{job_id}/clusters/{folder}/{cluster}")
def members(
    job: OwnedJob,
    deps: DepsDep,
    folder: str,
    cluster: int,
    limit: Annotated[int, Query(ge=1, le=500)] = 48,
) -> dict[str, Any]:
    """A cluster's most typical members (its tiles), and how many it has."""
    rows = _rows(deps, job.project, job.id, folder)
    size = sum(1 for r in rows if r.cluster == cluster)
    if not size:
        raise NotFound(f"no cluster {cluster} in {folder}")
    return {"cluster": cluster, "size": size, "members": cluster_members(rows, cluster, limit)}


@router.get("/label-names")
def names(project: ProjectDep, deps: DepsDep) -> dict[str, list[str]]:
    """Every label used in the project's jobs, most used first, then BirdNET's species
    names where the model is installed (completion)."""
    used = label_names(
        [r for job in deps.jobs.jobs(project.id) for r in deps.labels.labels(job.id)]
    )
    known = set(used)
    return {"labels": used + [n for n in species_names() if n not in known]}


@router.get("/audio-link")
def audio_link(
    project: ProjectDep,
    deps: DepsDep,
    path: Annotated[str, Query(description="the recording, e.g. siteA/r1.wav")],
    expires_s: Annotated[int, Query(ge=60, le=86_400)] = 3600,
) -> dict[str, str]:
    """A time-limited link to play a recording: players read just the span they play."""
    key = audio_prefix(project.id) + check_key(path)
    if not deps.objects.exists(key):
        raise NotFound(f"no recording {path}")
    return {"url": deps.objects.url(key, expires_s)}
