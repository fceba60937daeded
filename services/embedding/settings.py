from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bdisc.service.settings import ServiceSettings


class EmbeddingSettings(ServiceSettings):
    model_dir: Path | None = None
    threads: int = Field(default=1, ge=1, description="TFLite threads per replica")
    batch_size: int = Field(default=8, ge=1, le=512)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(
        default=50051, ge=0, le=65535, description="bdisc.v1.Inference; 0 turns it off"
    )
