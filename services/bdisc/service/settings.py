"""Settings shared by every service: environment variables with the ``BDISC_`` prefix.

Required values have no default, so a service with missing or invalid configuration
stops at start-up with a message naming the variable, instead of failing later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bdisc.errors import ConfigError


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BDISC_", extra="ignore")

    rabbitmq_url: str = Field(description="amqp://user:password@host:5672/vhost")
    s3_endpoint: str = Field(description="host:port of MinIO / S3")
    s3_access_key: str
    s3_secret_key: SecretStr
    s3_bucket: str = "bdisc"
    s3_secure: bool = False
    s3_public_endpoint: str | None = Field(
        default=None, description="host:port in presigned links, if clients see S3 elsewhere"
    )
    s3_provisioned: bool = Field(
        default=False,
        description=(
            "the bucket exists and this service's account holds only its own rights "
            "(python -m bdisc.service.store_policies): the service does not make the bucket"
        ),
    )
    grpc_token: SecretStr | None = Field(
        default=None,
        description=(
            "shared token of the gRPC services: callers send 'authorization: Bearer "
            "<token>'; unset: no check (health checks are never checked)"
        ),
    )
    metrics_port: int = Field(default=9460, ge=0, le=65535, description="0: no metrics")
    bus_senders: Literal["any", "checked"] = Field(
        default="any",
        description=(
            "checked: handle only messages whose RabbitMQ user may send them "
            "(bdisc.app.senders); needs a user per service, <bus_user_prefix><service>"
        ),
    )
    bus_user_prefix: str = Field(default="bdisc-", description="the services' RabbitMQ users")
    bus_topology: Literal["declare", "provisioned"] = Field(
        default="declare",
        description=(
            "provisioned: the broker's exchanges and queues come from the definitions of "
            "python -m bdisc.service.bus_definitions; services only check them"
        ),
    )
    scratch_dir: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "json"
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector for traces (http://otel-collector:4318); empty: off",
    )

    @field_validator("rabbitmq_url", "s3_secret_key", "grpc_token")
    @classmethod
    def _not_a_placeholder(cls, value: object) -> object:
        return refuse_placeholder(value)


PLACEHOLDER = "change-me"  # how .env.example marks what must be set


def refuse_placeholder(value: object) -> object:
    """A secret still holding .env.example's placeholder is refused at start-up."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(text, str) and PLACEHOLDER in text:
        raise ValueError(f"still the example's '{PLACEHOLDER}...' placeholder: set a secret")
    return value


class DatabaseSettings(ServiceSettings):
    database_url: str = Field(description="postgresql+psycopg://... or sqlite:///path")

    @field_validator("database_url")
    @classmethod
    def _database_not_a_placeholder(cls, value: object) -> object:
        return refuse_placeholder(value)

    webhook_allow_private: bool = Field(
        default=False,
        description="let webhooks call internal addresses (a development stack only)",
    )
    schema_wait_s: float = Field(
        default=300.0,
        ge=0,
        le=3600,
        description="how long to wait at start-up for the migrate Job to bring the schema",
    )


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Build a service's settings, turning validation errors into one clear ConfigError."""
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(
            f"BDISC_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
