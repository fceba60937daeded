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
    assert "BDISC_RABBITMQ_URL" in done.stderr and "BDISC_S3_ENDPOINT" in done.stderr
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
