"""Spectrogram tiles of a project's recordings, rendered on demand by the gRPC
Spectrogram service (a reviewer zooming into a cluster member, a monitoring page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from bdisc.app.keys import audio_prefix
from bdisc.errors import Retryable
from bdisc.ports.object_store import check_key
from bdisc.ports.tiles import TileSpec
from gateway.deps import DepsDep, ProjectDep

JOB_ID = r"^[A-Za-z0-9_.-]*$"  # it travels in gRPC metadata: plain ASCII

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
    job_id: Annotated[
        str,
        Query(description="for the logs: the job being reviewed", pattern=JOB_ID, max_length=64),
    ] = "",
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


class SegmentIn(BaseModel):
    path: str = Field(description="a recording of the project, e.g. siteA/r1.wav")
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)


class MontageIn(BaseModel):
    title: str = ""
    segments: list[SegmentIn] = Field(min_length=1, max_length=96)
    fmin: float = Field(0.0, ge=0)
    fmax: float = Field(12_000.0, gt=0)
    cmap: str = "magma"
    job_id: str = Field(
        "", description="for the logs: the job being reviewed", pattern=JOB_ID, max_length=64
    )


@router.post(
    "/montage",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the montage as PNG"}},
)
def montage(project: ProjectDep, deps: DepsDep, body: MontageIn) -> Response:
    """A grid of spectrogram tiles (e.g. a cluster's members, from its clusters.csv rows)
    with the band and colour map of your choice, as the review pages draw them."""
    if deps.tiles is None:
        raise Retryable("the spectrogram service is not configured")
    root = audio_prefix(project.id)
    segments = [(root + check_key(s.path), s.start_s, s.end_s) for s in body.segments]
    style = TileSpec("", 0, 0, body.fmin, body.fmax, body.cmap)
    png = deps.tiles.render_montage(body.title, segments, style, body.job_id)
    return Response(png, media_type="image/png")
