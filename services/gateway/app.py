"""The FastAPI application: routers, and the one place errors become HTTP responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from bdisc import tracing
from bdisc.errors import BdiscError, describe, http_status
from bdisc.version import __version__
from bdisc.webapp import STATIC
from gateway.body_guard import BodyGuard
from gateway.deps import Deps
from gateway.rate_limit import RateLimit
from gateway.request_metrics import RequestMetrics
from gateway.routes import (
    analyses,
    audio,
    export,
    files,
    health,
    jobs,
    labels,
    me,
    models,
    results,
    review_app,
    tiles,
    ui,
)

DESCRIPTION = """\
Upload recordings, run birdnet-discovery jobs, read their results and label clusters.

Every endpoint under /v1 needs the project's API key in the `X-API-Key` header (or
`Authorization: Bearer ...`). Create a project and its key with
`python -m gateway create-project NAME` (the key is shown once).

Typical flow: POST audio (one recording per request, `path=siteA/20230604_053000.wav`),
POST a job, poll GET /jobs/{job_id} until `done`, GET /results for download links,
GET/PUT /review/{folder} to read and label the clusters, POST /export to cut the labelled
clips into a training set (one folder per label) and GET /clips for its manifest.

The classifier loop: POST /models trains a head on a labelled job (GET /models/{model_id}:
metrics, the custom classifier to download); POST /jobs/{job_id}/classify|duplicates|suggest
and POST /search use its stored windows (search, suggest: review groups, /review/search-<id>).
"""


def create_app(deps: Deps) -> FastAPI:
    app = FastAPI(title="bdisc gateway", version=__version__, description=DESCRIPTION)
    app.state.deps = deps
    for router in (
        health.router,
        me.router,
        audio.router,
        files.router,
        jobs.router,
        results.router,
        labels.router,
        review_app.router,
        ui.router,
        export.router,
        models.router,
        analyses.router,
        tiles.router,
    ):
        app.include_router(router)

    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.middleware("http")
    async def traced(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """One span per request, continuing the caller's ``traceparent`` if it sent one;
        the commands a request publishes carry it on to the orchestrator."""
        with tracing.span(f"{request.method} {request.url.path}", dict(request.headers), "server"):
            response = await call_next(request)
            route = request.scope.get("route")  # known once routed: name the span by it
            if route is not None:
                tracing.rename(f"{request.method} {route.path}")
            return response

    app.add_middleware(BodyGuard, deps=deps)  # before any body is read
    app.add_middleware(RateLimit, per_s=deps.rate_per_s, burst=deps.rate_burst)
    app.add_middleware(RequestMetrics)  # outermost: every answer is counted

    @app.exception_handler(BdiscError)
    def bdisc_error(_request: Request, exc: BdiscError) -> JSONResponse:
        kind, message = describe(exc)
        return JSONResponse({"error": kind, "message": message}, status_code=http_status(exc))

    return app
