"""python -m spectrogram: serve bdisc.v1.Spectrogram (wiring only)."""

from __future__ import annotations

import sys

from pydantic import Field

from bdisc.service.boot import boot
from bdisc.service.settings import ServiceSettings
from spectrogram.grpc_server import serve


class SpectrogramSettings(ServiceSettings):
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50070, ge=1, le=65535)


def main() -> int:
    booted = boot("spectrogram", SpectrogramSettings)
    if booted is None:
        return 2
    s = booted.settings
    server, _ = serve(booted.object_store(), s.grpc_port, s.grpc_host)
    booted.stop.wait()
    server.stop(grace=10).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
