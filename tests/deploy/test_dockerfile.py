"""docker/Dockerfile against the rules of our images (no hadolint here: the rules as code).

Multi-stage; a pinned slim base; dependencies only from the pinned constraints; build
tools only in build stages; the runtime as a numeric non-root user; every service
target with a health check and a ``python -m`` entry point that exists; the model baked
into the embedding image (and copied into the training image); no secrets; the stubs
generated, not copied."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

import pytest

from .conftest import ROOT, SETTINGS, env_names


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str] = field(default_factory=list)

    def instructions(self, keyword: str) -> list[str]:
        return [line for line in self.lines if line.split(maxsplit=1)[0] == keyword]


def stages() -> dict[str, Stage]:
    text = (ROOT / "docker/Dockerfile").read_text()
    logical = re.sub(r"\\\n\s*", " ", text)  # join continued lines
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = Stage(match.group(2), match.group(1))
            found[current.name] = current
        elif current is not None:
            current.lines.append(line)
    return found


def ancestry(name: str, all_stages: dict[str, Stage]) -> list[Stage]:
    chain = []
    while name in all_stages:
        chain.append(all_stages[name])
        name = all_stages[name].base
    return chain


def test_base_image_is_pinned_and_slim() -> None:
    text = (ROOT / "docker/Dockerfile").read_text()
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), base.group(1)
    assert ":latest" not in text and "\nADD " not in text


@pytest.mark.parametrize("target", [*SETTINGS, "cli"])
def test_service_targets(target: str) -> None:
    all_stages = stages()
    assert target in all_stages, f"no target {target}"
    chain = ancestry(target, all_stages)
    assert chain[-1].name == "runtime", f"{target} is not built on the runtime stage"
    runtime = all_stages["runtime"]
    user = runtime.instructions("USER")
    assert user and re.fullmatch(r"USER 10001:10001", user[-1])
    assert any("useradd" in line and "10001" in line for line in runtime.lines)
    for stage in chain:  # nothing installs or compiles in what ships
        text = " ".join(stage.lines)
        assert "apt-get install" not in text and "pip install" not in text, stage.name
        assert not stage.instructions("ARG") or all(
            "SECRET" not in a.upper() and "PASSWORD" not in a.upper()
            for a in stage.instructions("ARG")
        )
    own = all_stages[target]
    copies = own.instructions("COPY")
    assert copies and all("--from=venv-" in c for c in copies), copies
    for env in [*own.instructions("ENV"), *runtime.instructions("ENV")]:
        assert not re.search(r"(PASSWORD|SECRET|ACCESS_KEY)", env), env
    if target == "cli":
        return
    entry = own.instructions("ENTRYPOINT")
    assert entry == [f'ENTRYPOINT ["python", "-m", "{target}"]']
    assert own.instructions("HEALTHCHECK"), f"{target} has no HEALTHCHECK"
    # Every BDISC_* variable an image sets is a setting of its service (no drift).
    for env in own.instructions("ENV"):
        for name in re.findall(r"(BDISC_\w+)=", env):
            assert name in env_names(SETTINGS[target]), (target, name)


def test_build_stages_use_the_pinned_constraints() -> None:
    for stage in stages().values():
        for line in stage.lines:
            if re.search(r"\bpip (install|download)\b", line):
                assert "-c docker/constraints.txt" in line, line
    build = stages()["build"]
    assert any("PIP_NO_CACHE_DIR=1" in line for line in build.instructions("ENV"))
    assert any("grpc_tools.protoc" in line for line in build.lines)  # stubs built here


def test_constraints_pin_every_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("ml", "discovery", "platform", "plots"):
        wanted += project["optional-dependencies"][extra]
    pins = {}
    for line in (ROOT / "docker/constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for requirement in wanted:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not pinned"
    assert "grpcio-tools" in pins


def test_embedding_image_carries_the_model() -> None:
    all_stages = stages()
    embedding = " ".join(all_stages["embedding"].lines)
    assert "COPY --from=venv-embedding /opt/model /opt/model" in embedding
    assert "BDISC_MODEL_DIR=/opt/model" in embedding
    baking = " ".join(all_stages["venv-embedding"].lines)
    assert "BirdNET_GLOBAL_6K_V2.4_" in baking and "LICENSE" in baking


def test_training_image_carries_the_model_and_a_tflite_runtime() -> None:
    """Training embeds a search's example and exports BirdNET-Analyzer's custom
    classifier: the same baked model as embedding, LiteRT and the discovery stack."""
    all_stages = stages()
    training = " ".join(all_stages["training"].lines)
    assert "COPY --from=venv-embedding /opt/model /opt/model" in training
    assert "BDISC_MODEL_DIR=/opt/model" in training
    venv = " ".join(all_stages["venv-training"].lines)
    assert "discovery" in venv and "ai-edge-litert" in venv


def test_dockerignore_keeps_secrets_and_junk_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "tests", "services/bdisc/v1"} <= ignored
