"""``python -m bdisc.service.healthcheck TARGET``: exit 0 if TARGET answers healthy.

TARGET is ``http://host:port/path`` (2xx: healthy) or ``grpc://host:port[/service]``
(``grpc.health.v1`` says SERVING). Container health checks use it, so images need no
curl or grpc_health_probe binary.
"""

from __future__ import annotations

import sys
import urllib.request
from urllib.parse import urlsplit

TIMEOUT_S = 3.0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except OSError:
        return False


def grpc_ok(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    parts = urlsplit(target)
    service = parts.path.lstrip("/")
    with grpc.insecure_channel(parts.netloc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith(("http://", "grpc://")):
        sys.stderr.write("usage: python -m bdisc.service.healthcheck http://...|grpc://...\n")
        return 2
    target = argv[0]
    healthy = grpc_ok(target) if target.startswith("grpc://") else http_ok(target)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
