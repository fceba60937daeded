from __future__ import annotations

from pydantic import Field

from bdisc.service.settings import DatabaseSettings


class GatewaySettings(DatabaseSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_upload_mb: int = Field(default=4096, ge=1, description="largest accepted upload")
    rate_limit_per_s: float = Field(
        default=20.0, ge=0, description="requests per second per API key (0: no limit)"
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="requests a key may send at once")
    spectrogram_addr: str = Field(
        default="127.0.0.1:50070", description="host:port of the gRPC Spectrogram service"
    )
