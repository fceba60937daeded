"""What the routes need, built once per process and injected (tests build their own),
typed against ports; the common dependencies as ``Annotated`` aliases:

    DepsDep     the process's ports (stores, bus, tile renderer)
    ProjectDep  the caller's project (its API key must match the path's project)
    OwnedJob    a job of that project (404 for other projects' jobs)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from bdisc.errors import ConfigError, Forbidden, NotFound, Unauthorized
from bdisc.ports.job_store import JobRecord, JobStore
from bdisc.ports.label_store import LabelStore
from bdisc.ports.message_bus import Message, MessageBus
from bdisc.ports.object_store import ObjectStore
from bdisc.ports.project_store import Project, ProjectStore
from bdisc.ports.tiles import TileRenderer


@dataclass
class Deps:
    objects: ObjectStore
    jobs: JobStore
    projects: ProjectStore
    bus: MessageBus
    labels: LabelStore
    max_upload_bytes: int
    ready_checks: dict[str, Callable[[], object]] = field(default_factory=dict)
    tiles: TileRenderer | None = None  # the Spectrogram service (tiles on demand)
    webhook_allow_private: bool = False  # development stacks: webhooks to this machine
    rate_per_s: float = 0.0  # requests per second per key (0: no limit)
    rate_burst: int = 0  # and how many may come at once
    _publish_lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, message: Message) -> None:
        with self._publish_lock:  # routes run in a thread pool; a pika connection is not shared
            self.bus.publish(message)


def get_deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


DepsDep = Annotated[Deps, Depends(get_deps)]


def api_key(x_api_key: str | None, authorization: str | None) -> str:
    """The key from ``X-API-Key`` or ``Authorization: Bearer ...``."""
    bearer = (
        authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
    )
    key = x_api_key or bearer
    if not key:
        raise Unauthorized("an API key is required (X-API-Key header)")
    return key


SESSION_COOKIE = "bdisc_key"  # the review app's session: HttpOnly, SameSite=Strict
UI_HEADER = "X-Bdisc-UI"  # sent by the review app with every change it asks for
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def authorised_project(
    request: Request,
    project: str,
    deps: DepsDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Project:
    """The caller's project, from ``X-API-Key``, ``Authorization: Bearer`` or the review
    app's session cookie; it must be the project named in the path. A change asked for
    with the cookie alone must carry ``X-Bdisc-UI`` (no other site can send that)."""
    session = request.cookies.get(SESSION_COOKIE)
    if not (x_api_key or authorization) and session:
        if request.method not in SAFE_METHODS and UI_HEADER.lower() not in request.headers:
            raise Forbidden(f"changes through the session need the {UI_HEADER} header")
        x_api_key = session
    found = deps.projects.by_key(api_key(x_api_key, authorization))
    if found is None:
        raise Unauthorized("unknown API key")
    if found.id != project:
        raise Forbidden(f"this key belongs to another project than {project!r}")
    return found


ProjectDep = Annotated[Project, Depends(authorised_project)]


def key_holder(
    project: ProjectDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Project:
    """The caller's project, for what only the key's holder may do (rotate the key, see
    the webhook's secret): the key in a header, not the review app's session cookie (a
    browser tab left open must not be able to lock the project's scripts out)."""
    if not (x_api_key or authorization):
        raise Forbidden("this needs the project's API key in X-API-Key, not a session")
    return project


KeyHolderDep = Annotated[Project, Depends(key_holder)]


def owned_job(project: ProjectDep, deps: DepsDep, job_id: str) -> JobRecord:
    """The job named in the path, if it is the caller's project's."""
    job = deps.jobs.job(job_id)
    if job.project != project.id:
        raise NotFound(f"no job {job_id}")  # do not reveal other projects' jobs
    return job


OwnedJob = Annotated[JobRecord, Depends(owned_job)]


# How long a presigned link lives: S3 signs for 1 s to 7 days.
ExpiresS = Annotated[int, Query(ge=1, le=7 * 24 * 3600, description="link lifetime, seconds")]

# Labels are written with the revision they were read at (optimistic concurrency).
IfMatch = Annotated[
    str | None, Header(description="the ETag of the labels you read (their revision)")
]
Author = Annotated[
    str, Header(alias="X-Bdisc-Author", max_length=128, description="who labels (history)")
]


def revision_of(if_match: str | None) -> int:
    """The revision an ``If-Match`` header names (``"3"``, ``W/"3"``, ``3``)."""
    if if_match is None:
        raise ConfigError("If-Match is required: the ETag of the labels you read")
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ConfigError(f"If-Match must be a labels revision (the ETag), got {if_match!r}")
    return int(text)


def etag(revision: int) -> str:
    return f'"{revision}"'
