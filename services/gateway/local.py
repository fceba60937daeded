"""``bdisc review RESULTS``: the gateway's review app over a ``bdisc discover`` output
folder on this machine, for one person, on 127.0.0.1 only, with no key to enter.

The same application as the platform's (``create_app``), with local adapters: the
results folder as the object store (``ResultsStore``), SQLite in ``RESULTS/.bdisc/`` for
the job record and the labels (kept there: they survive re-running ``bdisc discover``,
which carries them to the new clusters), and tiles drawn in this process."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bdisc.adapters.inprocess_bus import InProcessBus
from bdisc.adapters.local_tiles import LocalTiles
from bdisc.adapters.results_store import FILES_ROUTE, ResultsStore
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.app import stages
from bdisc.discovery.labelled_sheet import LOCAL_JOB, LOCAL_LABELS, local_labels_url
from bdisc.discovery.sheets import CLUSTERS_FILE
from bdisc.errors import NotFound
from gateway.app import create_app
from gateway.deps import Deps

PROJECT, JOB = "local", LOCAL_JOB


class _LocalKey:
    """Requests without a key get this process's key: the app opens at once."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            names = {name for name, _ in scope["headers"]}
            if b"x-api-key" not in names and b"authorization" not in names:
                scope = {**scope, "headers": [*scope["headers"], (b"x-api-key", self.key)]}
        await self.app(scope, receive, send)


def deployments(results: Path) -> list[str]:
    found = (p.parent.name for p in results.glob(f"*/{CLUSTERS_FILE}"))
    return sorted(name for name in found if not name.startswith("."))


def build(results: Path) -> FastAPI:
    """The review app over ``results``."""
    folders = deployments(results)
    if not folders:
        raise NotFound(f"{results} holds no clustered deployments: run bdisc discover first")
    (results / LOCAL_LABELS).parent.mkdir(parents=True, exist_ok=True)
    url = local_labels_url(results)
    migrate(url)
    jobs = SqlJobStore(url)
    projects = SqlProjectStore(jobs.engine)
    try:  # a key for this process only
        key = projects.rotate_key(PROJECT)
    except NotFound:
        key = projects.create(PROJECT)[1]
    if jobs.create_job(JOB, PROJECT, "discover", {"results": str(results)}, [], stages.CLUSTER):
        jobs.set_job_status(JOB, "done")
    jobs.add_items(JOB, stages.CLUSTER, [(f, f, "done", "") for f in folders])
    objects = ResultsStore(results, PROJECT, JOB)
    deps = Deps(
        objects,
        jobs,
        projects,
        InProcessBus(),
        SqlLabelStore(jobs.engine),
        max_upload_bytes=0,
        tiles=LocalTiles(objects.local_path),
    )
    app = create_app(deps)

    @app.get(FILES_ROUTE + "{key:path}", include_in_schema=False)
    def files(key: str) -> FileResponse:  # links to recordings and results: ranged reads
        return FileResponse(objects.local_path(key))

    app.add_middleware(_LocalKey, key=key)
    return app


def serve(results: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(build(results), host="127.0.0.1", port=port, log_level="warning")
