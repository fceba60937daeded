"""Client of the gRPC ``bdisc.v1.Spectrogram`` service: tiles rendered on demand.

gRPC status codes come back as the exception tree (NOT_FOUND -> NotFound, ...), so the
gateway answers a missing recording with 404 as if it had rendered the tile itself. The
caller's job id travels as ``x-job-id`` metadata, for the server's logs, and its trace as
``traceparent``.
"""

from __future__ import annotations

from typing import Any

import grpc

from bdisc import tracing
from bdisc.errors import from_grpc_code
from bdisc.ports.tiles import TileSpec

MAX_IMAGE_BYTES = 32 * 1024 * 1024  # as the server's MAX_RESPONSE_BYTES


class SpectrogramClient:
    def __init__(self, address: str, timeout_s: float = 30.0, token: str | None = None) -> None:
        """``token``: the gRPC services' shared token (``BDISC_GRPC_TOKEN``), if set."""
        from bdisc.v1 import spectrogram_pb2_grpc

        self.address, self.timeout_s = address, timeout_s
        self._auth = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = grpc.insecure_channel(  # the server's largest image, not 4 MiB
            address, options=[("grpc.max_receive_message_length", MAX_IMAGE_BYTES)]
        )
        self._stub = spectrogram_pb2_grpc.SpectrogramStub(self._channel)  # type: ignore[no-untyped-call]

    def render_tile(self, tile: TileSpec, job_id: str = "") -> bytes:
        from bdisc.v1 import spectrogram_pb2

        request = spectrogram_pb2.TileRequest(
            audio_key=tile.audio_key,
            start_s=tile.start_s,
            end_s=tile.end_s,
            fmin=tile.fmin,
            fmax=tile.fmax,
            cmap=tile.cmap,
            width=tile.width,
            height=tile.height,
        )
        return self._call(self._stub.RenderTile, request, job_id)

    def render_montage(
        self,
        title: str,
        segments: list[tuple[str, float, float]],
        style: TileSpec,
        job_id: str = "",
    ) -> bytes:
        """A grid of (audio_key, start_s, end_s) tiles; ``style`` gives band and colours."""
        from bdisc.v1 import spectrogram_pb2

        request = spectrogram_pb2.MontageRequest(
            title=title,
            segments=[
                spectrogram_pb2.Segment(audio_key=k, start_s=a, end_s=b) for k, a, b in segments
            ],
            fmin=style.fmin,
            fmax=style.fmax,
            cmap=style.cmap,
        )
        return self._call(self._stub.RenderMontage, request, job_id)

    def _call(self, method: Any, request: Any, job_id: str) -> bytes:
        name = type(request).__name__.removesuffix("Request")
        with tracing.span(f"Spectrogram/Render{name}", kind="client", job_id=job_id):
            job_id = "".join(c for c in job_id if " " < c < "\x7f")  # metadata is ASCII
            metadata = (
                ((("x-job-id", job_id),) if job_id else ())
                + tuple(tracing.carrier().items())  # traceparent: the server's span joins
                + self._auth
            )
            try:
                image = method(request, timeout=self.timeout_s, metadata=metadata)
            except grpc.RpcError as exc:
                code = exc.code().name if exc.code() else "UNKNOWN"
                raise from_grpc_code(code, f"spectrogram service: {exc.details()}") from exc
        return bytes(image.png)

    def close(self) -> None:
        self._channel.close()
