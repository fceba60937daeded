"""TileRenderer in this process, over files on this machine (``bdisc review``): the same
drawing code as the gRPC Spectrogram service, reading only the spans it draws."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bdisc.audio.segments import read_segment
from bdisc.errors import ConfigError
from bdisc.ports.tiles import TileSpec
from bdisc.render.montage import Span, montage_png
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.render.tile import tile_png


class LocalTiles:
    def __init__(self, resolve: Callable[[str], Path]) -> None:
        self.resolve = resolve  # object key -> local file (NotFound if none)

    def _read(self, key: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        return read_segment(self.resolve(key), start_s, end_s)

    def render_tile(self, tile: TileSpec, job_id: str = "") -> bytes:
        samples, rate = self._read(tile.audio_key, tile.start_s, tile.end_s)
        if samples.size == 0:
            raise ConfigError(f"nothing to draw: the recording ends before {tile.start_s:g} s")
        style = SpectrogramStyle(tile.fmin, tile.fmax, tile.cmap)
        return tile_png(samples, rate, style, tile.width, tile.height)

    def render_montage(
        self,
        title: str,
        segments: list[tuple[str, float, float]],
        style: TileSpec,
        job_id: str = "",
    ) -> bytes:
        spans = [Span(key, start, end) for key, start, end in segments]
        look = SpectrogramStyle(style.fmin, style.fmax, style.cmap)
        return montage_png(title, spans, self._read, look).data
