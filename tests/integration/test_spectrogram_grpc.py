"""gRPC Spectrogram: tiles from recordings in the object store; errors as status codes."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from bdisc.adapters.spectrogram_client import SpectrogramClient
from bdisc.errors import Unauthorized
from bdisc.ports.tiles import TileSpec
from bdisc.v1 import spectrogram_pb2, spectrogram_pb2_grpc
from spectrogram.grpc_server import serve

from ..conftest import admin_store

KEY = "projects/p/audio/site/soundscape.flac"


@pytest.fixture(scope="module")
def stub(s3_endpoint: str, audio_dir: Path) -> Iterator[spectrogram_pb2_grpc.SpectrogramStub]:
    objects = admin_store(s3_endpoint, f"tiles-{uuid.uuid4().hex[:10]}")
    objects.put_file(KEY, audio_dir / "soundscape.flac")
    server, port = serve(objects, 0)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield spectrogram_pb2_grpc.SpectrogramStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="bdisc.v1.Spectrogram"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    server.stop(grace=1)


@pytest.mark.integration
def test_tiles_show_the_sound(stub: spectrogram_pb2_grpc.SpectrogramStub) -> None:
    call = spectrogram_pb2.TileRequest(audio_key=KEY, start_s=0.0, end_s=3.0, width=300, height=150)
    image = Image.open(io.BytesIO(stub.RenderTile(call).png))
    assert image.size == (300, 150)
    busy = np.asarray(image.convert("L"), dtype=float)
    # The chickadee window has structure: bright calls on a dark background.
    assert busy.std() > 20
    band = stub.RenderTile(
        spectrogram_pb2.TileRequest(
            audio_key=KEY, start_s=0, end_s=3, fmin=2000, fmax=6000, cmap="gray"
        )
    )
    assert Image.open(io.BytesIO(band.png)).size == (480, 240)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        ({"audio_key": "projects/p/audio/none.wav", "start_s": 0, "end_s": 3}, "NOT_FOUND"),
        ({"audio_key": "../etc/passwd", "start_s": 0, "end_s": 3}, "INVALID_ARGUMENT"),
        ({"audio_key": KEY, "start_s": 5, "end_s": 2}, "INVALID_ARGUMENT"),
        ({"audio_key": KEY, "start_s": 0, "end_s": 600}, "INVALID_ARGUMENT"),
        ({"audio_key": KEY, "start_s": 500, "end_s": 503}, "INVALID_ARGUMENT"),
        ({"audio_key": KEY, "start_s": 0, "end_s": 3, "cmap": "no-such-map"}, "INVALID_ARGUMENT"),
        # 16.7 M pixels drew with 1.4 GB: at most 2 M
        (
            {"audio_key": KEY, "start_s": 0, "end_s": 3, "width": 4096, "height": 4096},
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_bad_requests_get_status_codes(
    stub: spectrogram_pb2_grpc.SpectrogramStub, request_kwargs: dict[str, object], code: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.RenderTile(spectrogram_pb2.TileRequest(**request_kwargs))  # type: ignore[arg-type]
    assert info.value.code() == grpc.StatusCode[code]


@pytest.mark.integration
def test_montage_of_segments(stub: spectrogram_pb2_grpc.SpectrogramStub) -> None:
    segments = [
        spectrogram_pb2.Segment(audio_key=KEY, start_s=3 * i, end_s=3 * i + 3) for i in range(7)
    ]
    image = stub.RenderMontage(spectrogram_pb2.MontageRequest(title="cluster 3", segments=segments))
    picture = Image.open(io.BytesIO(image.png))
    assert picture.size == (image.width, image.height)
    assert image.width > image.height  # a grid of tiles, several per row
    one = stub.RenderMontage(spectrogram_pb2.MontageRequest(segments=segments[:1]))
    assert one.width < image.width
    for bad in (
        spectrogram_pb2.MontageRequest(segments=[]),
        spectrogram_pb2.MontageRequest(
            segments=[spectrogram_pb2.Segment(audio_key="../x", start_s=0, end_s=3)]
        ),
        spectrogram_pb2.MontageRequest(segments=segments[:2], cmap="no-such-map"),
        spectrogram_pb2.MontageRequest(  # 96 tiles of 60 s: more audio than a montage shows
            segments=[spectrogram_pb2.Segment(audio_key=KEY, start_s=0, end_s=60)] * 96
        ),
    ):
        with pytest.raises(grpc.RpcError) as info:
            stub.RenderMontage(bad)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.integration
def test_with_a_token_only_callers_that_carry_it_are_served(
    s3_endpoint: str, audio_dir: Path
) -> None:
    """Reaching the port is not enough: calls need the services' shared token (health
    checks excepted, for the orchestrators' probes)."""
    objects = admin_store(s3_endpoint, f"tiles-{uuid.uuid4().hex[:10]}")
    objects.put_file(KEY, audio_dir / "soundscape.flac")
    server, port = serve(objects, 0, token="s3cret-token")
    tile = TileSpec(audio_key=KEY, start_s=0.0, end_s=3.0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = spectrogram_pb2_grpc.SpectrogramStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.RenderTile(spectrogram_pb2.TileRequest(audio_key=KEY, start_s=0, end_s=3))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="bdisc.v1.Spectrogram"))
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(Unauthorized):
            SpectrogramClient(f"127.0.0.1:{port}", token="guessed").render_tile(tile)
        png = SpectrogramClient(f"127.0.0.1:{port}", token="s3cret-token").render_tile(tile)
        assert Image.open(io.BytesIO(png)).size == (480, 240)
    finally:
        server.stop(grace=1)
