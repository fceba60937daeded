"""services/devstack, without starting anything: every service gets its own metrics port,
and a stack fits the blocks of ports the end-to-end tests give it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.stack import GRPC_BASE, METRICS_BASE, SERVICES, Stack

from .conftest import SETTINGS

# tests/e2e start stacks with metrics ports from 19100, 19200 and 19300 (two embedding
# replicas each), and the fault test restarts the orchestrator on 19110.
E2E_BLOCK = 10
E2E_REPLICAS = 2


def started_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: int
) -> dict[str, dict[str, Any]]:
    spawned: dict[str, dict[str, Any]] = {}

    def spawn(self: Stack, name: str, argv: list[str], env: dict[str, str]) -> int:
        spawned[name] = {"argv": argv, "env": env}
        return len(spawned)

    monkeypatch.setattr(Stack, "_spawn", spawn)
    Stack(tmp_path).start_services(E2E_REPLICAS, metrics_base=base)
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
