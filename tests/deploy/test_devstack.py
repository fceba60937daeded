"""services/devstack, without starting anything: every service gets its own metrics port,
and a stack fits the blocks of ports the end-to-end tests give it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.stack import GRPC_BASE, METRICS_BASE, SERVICES, SPECTROGRAM_OFFSET, Stack
from gateway.settings import GatewaySettings

from .conftest import SETTINGS, default

# tests/e2e give a stack a block of free ports (tests/e2e/stack_helpers.StackPorts): the
# gateway's, metrics ports from base + 1 (a restarted service's from base + 21), gRPC ports
# from base + 32, with two embedding replicas.
E2E_BLOCK = 20
E2E_REPLICAS = 2


def started_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: int, grpc_base: int = GRPC_BASE
) -> dict[str, dict[str, Any]]:
    spawned: dict[str, dict[str, Any]] = {}

    def spawn(self: Stack, name: str, argv: list[str], env: dict[str, str]) -> int:
        spawned[name] = {"argv": argv, "env": env}
        return len(spawned)

    monkeypatch.setattr(Stack, "_spawn", spawn)
    Stack(tmp_path, grpc_base=grpc_base).start_services(E2E_REPLICAS, metrics_base=base)
    return spawned


def test_the_stack_runs_every_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned = started_env(tmp_path, monkeypatch, METRICS_BASE)
    modules = {s["argv"][-1] for s in spawned.values()}
    assert modules == set(SETTINGS)  # python -m <service>, embedding included
    assert "training" in SERVICES


def test_metrics_ports_are_distinct_and_fit_the_e2e_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = 19100
    spawned = started_env(tmp_path, monkeypatch, base)
    ports = [int(s["env"]["BDISC_METRICS_PORT"]) for s in spawned.values()]
    assert len(set(ports)) == len(ports)
    assert all(base <= p < base + E2E_BLOCK for p in ports), sorted(ports)
    # the embedding replicas come right after SERVICES (test_submit_matches_embedded)
    for i in range(E2E_REPLICAS):
        name = f"embedding-{i + 1}"
        assert int(spawned[name]["env"]["BDISC_METRICS_PORT"]) == base + len(SERVICES) + i
        assert spawned[name]["env"]["BDISC_GRPC_PORT"] == str(GRPC_BASE + i + 1)


def test_a_second_stack_moves_every_grpc_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gRPC ports move with the stack's base, and the gateway is told where the
    spectrogram service went."""
    for grpc_base in (GRPC_BASE, 30032):
        spawned = started_env(tmp_path, monkeypatch, 30001, grpc_base)
        spectrogram = grpc_base + SPECTROGRAM_OFFSET
        assert spawned["spectrogram"]["env"]["BDISC_GRPC_PORT"] == str(spectrogram)
        assert spawned["gateway"]["env"]["BDISC_SPECTROGRAM_ADDR"] == f"127.0.0.1:{spectrogram}"
        replicas = {spawned[f"embedding-{i + 1}"]["env"]["BDISC_GRPC_PORT"] for i in range(2)}
        assert replicas == {str(grpc_base + 1), str(grpc_base + 2)}
    assert default(GatewaySettings, "spectrogram_addr") == f"127.0.0.1:{GRPC_BASE + 20}"
