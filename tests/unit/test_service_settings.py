"""Services fail fast, naming the variable, when configuration is missing or invalid."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "service", ["embedding", "clustering", "orchestrator", "evaluation", "spectrogram", "training"]
)
def test_missing_configuration_stops_the_service_clearly(service: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BDISC_")}
    done = subprocess.run(
        [sys.executable, "-m", service], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "BDISC_S3_ENDPOINT" in done.stderr
    # the spectrogram service serves gRPC and never reaches the broker
    assert ("BDISC_RABBITMQ_URL" in done.stderr) == (service != "spectrogram")
    if service == "orchestrator":
        assert "BDISC_DATABASE_URL" in done.stderr


def test_invalid_values_are_named() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BDISC_")},
        "BDISC_RABBITMQ_URL": "amqp://x",
        "BDISC_S3_ENDPOINT": "h:1",
        "BDISC_S3_ACCESS_KEY": "a",
        "BDISC_S3_SECRET_KEY": "b",
        "BDISC_METRICS_PORT": "99999",
    }
    done = subprocess.run(
        [sys.executable, "-m", "clustering"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "BDISC_METRICS_PORT" in done.stderr


def test_the_examples_placeholder_secrets_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack started with .env.example's secrets unchanged stops, naming them."""
    from bdisc.errors import ConfigError
    from bdisc.service.settings import load
    from orchestrator.settings import OrchestratorSettings

    for name, value in {
        "BDISC_RABBITMQ_URL": "amqp://bdisc:change-me-rabbit-secret@rabbitmq:5672/%2F",
        "BDISC_S3_ENDPOINT": "minio:9000",
        "BDISC_S3_ACCESS_KEY": "bdisc",
        "BDISC_S3_SECRET_KEY": "change-me-minio-secret",
        "BDISC_GRPC_TOKEN": "change-me-grpc-token",
        "BDISC_DATABASE_URL": "postgresql+psycopg://bdisc:change-me-postgres-secret@db/bdisc",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load(OrchestratorSettings)
    for name in ("RABBITMQ_URL", "S3_SECRET_KEY", "GRPC_TOKEN", "DATABASE_URL"):
        assert f"BDISC_{name}" in refused.value.message
    for name, value in {
        "BDISC_RABBITMQ_URL": "amqp://bdisc:a-real-secret@rabbitmq:5672/%2F",
        "BDISC_S3_SECRET_KEY": "another-real-secret",
        "BDISC_GRPC_TOKEN": "a-long-random-token",
        "BDISC_DATABASE_URL": "postgresql+psycopg://bdisc:pw@db/bdisc",
    }.items():
        monkeypatch.setenv(name, value)
    assert load(OrchestratorSettings).grpc_token is not None
