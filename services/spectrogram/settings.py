from __future__ import annotations

from pydantic import Field

from bdisc.service.settings import ServiceSettings


class SpectrogramSettings(ServiceSettings):
    rabbitmq_url: str = Field(default="", description="unused: tiles are served over gRPC")
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50070, ge=1, le=65535)
    grpc_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="tiles drawn at once (each up to ~300 MB; the pod's limit is 1 GiB)",
    )
