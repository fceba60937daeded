"""gRPC ``bdisc.v1.Spectrogram`` and ``grpc.health.v1`` (translation only)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bdisc.adapters.object_file import open_object
from bdisc.audio.segments import read_segment
from bdisc.discovery.sheets import WindowRow
from bdisc.errors import BdiscError, ConfigError, grpc_code
from bdisc.ports.object_store import ObjectStore, check_key
from bdisc.render.montage import render_montage
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.render.tile import tile_png
from bdisc.service.grpc_server import start
from bdisc.v1 import spectrogram_pb2, spectrogram_pb2_grpc

SERVICE = "bdisc.v1.Spectrogram"
MAX_SPAN_S, MAX_PIXELS, MAX_TILES = 60.0, 4096, 96


class SpectrogramServicer(spectrogram_pb2_grpc.SpectrogramServicer):  # type: ignore[misc]
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def RenderTile(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return self._render(request)
        except BdiscError as exc:
            context.abort(grpc.StatusCode[grpc_code(exc)], exc.message)

    def RenderMontage(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return self._montage(request)
        except BdiscError as exc:
            context.abort(grpc.StatusCode[grpc_code(exc)], exc.message)

    def _montage(self, r: Any) -> Any:
        if not 1 <= len(r.segments) <= MAX_TILES:
            raise ConfigError(f"a montage has 1 to {MAX_TILES} segments")
        members = []
        for s in r.segments:
            check_key(s.audio_key)
            if s.start_s < 0 or not 0 < s.end_s - s.start_s <= MAX_SPAN_S:
                raise ConfigError(f"need 0 <= start_s < end_s <= start_s + {MAX_SPAN_S:g}")
            members.append(WindowRow("", s.audio_key, s.start_s, s.end_s, 0, 1.0, 0, 0, "", 0))

        def read(row: WindowRow) -> tuple[np.ndarray, int]:
            with open_object(self.objects, row.file) as source:
                return read_segment(source, row.start_s, row.end_s)

        style = SpectrogramStyle(r.fmin, r.fmax or 12_000.0, r.cmap or "magma")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "montage.png"
            try:
                render_montage(out, r.title, members, read, style)
            except ValueError as exc:  # e.g. an unknown colour map
                raise ConfigError(str(exc)) from exc
            png = out.read_bytes()
        from PIL import Image

        width, height = Image.open(io.BytesIO(png)).size
        return spectrogram_pb2.Image(png=png, width=width, height=height)

    def _render(self, r: Any) -> Any:
        key = check_key(r.audio_key)
        span = r.end_s - r.start_s
        if r.start_s < 0 or not 0 < span <= MAX_SPAN_S:
            raise ConfigError(f"need 0 <= start_s < end_s <= start_s + {MAX_SPAN_S:g}")
        width, height = r.width or 480, r.height or 240
        if not (16 <= width <= MAX_PIXELS and 16 <= height <= MAX_PIXELS):
            raise ConfigError(f"width and height must be 16 to {MAX_PIXELS} pixels")
        style = SpectrogramStyle(r.fmin, r.fmax or 12_000.0, r.cmap or "magma")
        # ranged reads: a tile of a 24-h recording fetches its span, not the file
        with open_object(self.objects, key) as source:  # NotFound -> NOT_FOUND
            samples, rate = read_segment(source, r.start_s, r.end_s)
        if samples.size == 0:
            raise ConfigError(f"nothing to draw: the recording ends before {r.start_s:g} s")
        try:
            png = tile_png(samples, rate, style, width, height)
        except ValueError as exc:  # e.g. an unknown colour map
            raise ConfigError(str(exc)) from exc
        return spectrogram_pb2.Image(png=png, width=width, height=height)


def serve(
    objects: ObjectStore, port: int, host: str = "127.0.0.1", max_workers: int = 4
) -> tuple[grpc.Server, int]:
    return start(
        lambda server: spectrogram_pb2_grpc.add_SpectrogramServicer_to_server(  # type: ignore[no-untyped-call]
            SpectrogramServicer(objects), server
        ),
        [SERVICE],
        port,
        host,
        max_workers,
    )
