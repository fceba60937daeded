"""gRPC ``bdisc.v1.Spectrogram`` and ``grpc.health.v1`` (translation only)."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from bdisc.app.object_file import open_object
from bdisc.audio.segments import read_segment
from bdisc.errors import ConfigError
from bdisc.ports.object_store import ObjectStore, check_key
from bdisc.render.montage import Span, montage_png
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.render.tile import tile_png
from bdisc.service.grpc_server import start
from bdisc.v1 import spectrogram_pb2, spectrogram_pb2_grpc

SERVICE = "bdisc.v1.Spectrogram"
MAX_SPAN_S, MAX_PIXELS, MAX_TILES = 60.0, 4096, 96
MAX_MONTAGE_S = 600.0  # seconds of audio in one montage, all tiles together
MAX_AREA = 2048 * 1024  # pixels of one tile: drawing costs about 100 bytes per pixel


class SpectrogramServicer(spectrogram_pb2_grpc.SpectrogramServicer):  # type: ignore[misc]
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    # BdiscErrors become status codes in the server's interceptor (service/grpc_server.py).
    def RenderTile(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._render(request)

    def RenderMontage(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._montage(request)

    def _montage(self, r: Any) -> Any:
        if not 1 <= len(r.segments) <= MAX_TILES:
            raise ConfigError(f"a montage has 1 to {MAX_TILES} segments")
        spans = []
        for s in r.segments:
            _check_segment(s)
            spans.append(Span(s.audio_key, s.start_s, s.end_s))
        total = sum(span.end_s - span.start_s for span in spans)
        if total > MAX_MONTAGE_S:
            raise ConfigError(
                f"a montage shows at most {MAX_MONTAGE_S:g} s of audio in all (asked {total:g} s)"
            )

        def read(key: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
            with open_object(self.objects, key) as source:
                return read_segment(source, start_s, end_s)

        png = montage_png(r.title, spans, read, _style(r))  # a bad cmap: ConfigError
        return spectrogram_pb2.Image(png=png.data, width=png.width, height=png.height)

    def _render(self, r: Any) -> Any:
        _check_segment(r)
        width, height = r.width or 480, r.height or 240
        if not (16 <= width <= MAX_PIXELS and 16 <= height <= MAX_PIXELS):
            raise ConfigError(f"width and height must be 16 to {MAX_PIXELS} pixels")
        if width * height > MAX_AREA:
            raise ConfigError(f"a tile has at most {MAX_AREA} pixels (width x height)")
        # ranged reads: a tile of a 24-h recording fetches its span, not the file
        with open_object(self.objects, r.audio_key) as source:  # NotFound -> NOT_FOUND
            samples, rate = read_segment(source, r.start_s, r.end_s)
        if samples.size == 0:
            raise ConfigError(f"nothing to draw: the recording ends before {r.start_s:g} s")
        png = tile_png(samples, rate, _style(r), width, height)  # a bad cmap: ConfigError
        return spectrogram_pb2.Image(png=png, width=width, height=height)


def _check_segment(s: Any) -> None:
    """A TileRequest or Segment: a safe key and a span of at most MAX_SPAN_S."""
    check_key(s.audio_key)
    if s.start_s < 0 or not 0 < s.end_s - s.start_s <= MAX_SPAN_S:
        raise ConfigError(f"need 0 <= start_s < end_s <= start_s + {MAX_SPAN_S:g}")


def _style(r: Any) -> SpectrogramStyle:
    return SpectrogramStyle(r.fmin, r.fmax or 12_000.0, r.cmap or "magma")


def serve(
    objects: ObjectStore,
    port: int,
    host: str = "127.0.0.1",
    max_workers: int = 4,
    token: str | None = None,
) -> tuple[grpc.Server, int]:
    return start(
        lambda server: spectrogram_pb2_grpc.add_SpectrogramServicer_to_server(  # type: ignore[no-untyped-call]
            SpectrogramServicer(objects), server
        ),
        [SERVICE],
        port,
        host,
        max_workers,
        token,
    )
