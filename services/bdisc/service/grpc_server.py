"""Start a gRPC server with ``grpc.health.v1`` reporting SERVING for its services."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def start(
    add_servicers: Callable[[grpc.Server], None],
    services: list[str],
    port: int,
    host: str = "127.0.0.1",
    max_workers: int = 4,
) -> tuple[grpc.Server, int]:
    """Returns the started server and its port (port 0: any free port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    add_servicers(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound
