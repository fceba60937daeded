"""python -m spectrogram: serve bdisc.v1.Spectrogram (wiring only)."""

from __future__ import annotations

import sys

from bdisc.service.boot import boot
from spectrogram.grpc_server import serve
from spectrogram.settings import SpectrogramSettings


def main() -> int:
    booted = boot("spectrogram", SpectrogramSettings)
    if booted is None:
        return 2
    s = booted.settings
    server, _ = serve(
        booted.object_store(),
        s.grpc_port,
        s.grpc_host,
        s.grpc_workers,
        s.grpc_token.get_secret_value() if s.grpc_token else None,
    )
    booted.stop.wait()
    server.stop(grace=10).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
