"""Spectrogram tiles of a project's recordings, rendered on demand by the gRPC
Spectrogram service (a reviewer zooming into a cluster member, a monitoring page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from bdisc.adapters.spectrogram_client import TileSpec
from bdisc.app.keys import audio_prefix
from bdisc.errors import Retryable
from bdisc.ports.object_store import check_key
from gateway.deps import DepsDep, ProjectDep

router = APIRouter(prefix="/v1/projects/{project}", tags=["audio"])


@router.get(
    "/spectrogram",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the tile as PNG"}},
)
def spectrogram(
    project: ProjectDep,
    deps: DepsDep,
    path: Annotated[str, Query(description="the recording, e.g. siteA/20230604_053000.wav")],
    start_s: Annotated[float, Query(ge=0)],
    end_s: Annotated[float, Query(gt=0, description="at most 60 s after start_s")],
    fmin: Annotated[float, Query(ge=0)] = 0.0,
    fmax: Annotated[float, Query(gt=0)] = 12_000.0,
    cmap: str = "magma",
    width: Annotated[int, Query(ge=16, le=4096)] = 480,
    height: Annotated[int, Query(ge=16, le=4096)] = 240,
    job_id: Annotated[str, Query(description="for the logs: the job being reviewed")] = "",
) -> Response:
    """A spectrogram of [start_s, end_s) of one recording, as a PNG image."""
    if deps.tiles is None:
        raise Retryable("the spectrogram service is not configured")
    tile = TileSpec(
        audio_prefix(project.id) + check_key(path),
        start_s,
        end_s,
        fmin,
        fmax,
        cmap,
        width,
        height,
    )
    return Response(deps.tiles.render_tile(tile, job_id), media_type="image/png")
