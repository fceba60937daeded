"""Spectrogram tiles and montages rendered on demand (the gateway's review pages); the
gRPC ``bdisc.v1.Spectrogram`` service is the deployed adapter
(``adapters/spectrogram_client.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TileSpec:
    audio_key: str
    start_s: float
    end_s: float
    fmin: float = 0.0
    fmax: float = 12_000.0
    cmap: str = "magma"
    width: int = 480
    height: int = 240


class TileRenderer(Protocol):
    def render_tile(self, tile: TileSpec, job_id: str = "") -> bytes:
        """PNG of one span of a recording (NotFound when the recording is not there)."""
        ...

    def render_montage(
        self,
        title: str,
        segments: list[tuple[str, float, float]],
        style: TileSpec,
        job_id: str = "",
    ) -> bytes:
        """PNG grid of (audio_key, start_s, end_s) tiles; ``style`` gives band and colours."""
        ...
