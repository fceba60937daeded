"""Who may send what (``bdisc.app.senders``), the bus a service's settings make, and the
broker definitions' users and rights (``bdisc.service.bus_definitions``)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from bdisc.app import stages
from bdisc.app.messages import KINDS, Command, Event
from bdisc.app.senders import EVENT_STAGE, ORCHESTRATOR_ONLY, SenderCheck, may_send
from bdisc.errors import ConfigError
from bdisc.service.bus import rabbit_bus
from bdisc.service.bus_definitions import SERVICES, BusPasswords, definitions, password_hash
from bdisc.service.settings import ServiceSettings


def test_every_event_of_the_contract_has_its_senders() -> None:
    for kind, contract in KINDS.items():
        if issubclass(contract, Event):
            assert kind in EVENT_STAGE or kind in ORCHESTRATOR_ONLY, kind
        if issubclass(contract, Command):
            assert may_send(contract.stage, kind) == {"gateway", "orchestrator"}
    assert may_send(stages.EVENTS, "embedded") == {"embedding", "orchestrator"}
    assert may_send(stages.EVENTS, "work_unreadable") == {"orchestrator"}
    assert may_send(stages.CLUSTER, "cluster") == {"clustering", "orchestrator"}


def test_a_user_outside_the_prefix_is_nobody() -> None:
    check = SenderCheck("bdisc-")
    embed = stages.EMBED
    assert check.accepts(embed, embed, "embed", "bdisc-orchestrator")
    assert check.accepts(embed, embed, "embed", "bdisc-embedding")  # its own retry
    assert not check.accepts(embed, embed, "embed", "bdisc-clustering")
    assert not check.accepts(embed, embed, "embed", "guest")
    assert not check.accepts(embed, embed, "embed", "")
    assert not check.accepts(stages.EVENTS, stages.EVENTS, "cancel", "bdisc-embedding")
    # on a work queue only that stage's work, whoever sends it
    assert not check.accepts(embed, embed, "cancel", "bdisc-orchestrator")
    assert not check.accepts(embed, embed, "cluster", "bdisc-orchestrator")
    assert not check.accepts(embed, stages.CLUSTER, "embed", "bdisc-orchestrator")


class _AnyField:
    """Stands for a work item: every field reads as "x"."""

    def __getattr__(self, name: str) -> str:
        return "x"


def test_each_work_is_answered_by_the_service_of_its_stage() -> None:
    """The events that settle a stage's work (its ``failed`` one and its success) are
    sendable by the service that consumes that work: nothing legitimate is dropped."""
    from bdisc.app.messages import Work
    from bdisc.app.senders import SERVICE_OF_STAGE

    works = [c for c in KINDS.values() if issubclass(c, Work)]
    assert len(works) >= 10
    for work in works:
        failed = work.failed(_AnyField(), "x")  # type: ignore[arg-type]
        sender = SERVICE_OF_STAGE[work.stage]
        assert sender in may_send(stages.EVENTS, failed.kind), work.kind
        assert sender in may_send(work.stage, work.kind), work.kind
        successes = [
            k for k, s in EVENT_STAGE.items() if s == work.stage and not k.endswith("_failed")
        ]
        assert successes, work.kind


def settings(url: str, **extra: str) -> ServiceSettings:
    return ServiceSettings(
        rabbitmq_url=url,
        s3_endpoint="127.0.0.1:1",
        s3_access_key="k",
        s3_secret_key="s",  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def test_a_checked_service_must_log_in_as_itself() -> None:
    guest = settings("amqp://guest:guest@127.0.0.1:5672/%2F", bus_senders="checked")
    with pytest.raises(ConfigError, match="bdisc-embedding"):
        rabbit_bus(guest, "embedding")
    own = settings("amqp://bdisc-embedding:x@127.0.0.1:5672/%2F", bus_senders="checked")
    bus = rabbit_bus(own, "embedding")
    assert bus.user == "bdisc-embedding" and bus.accept is not None
    assert rabbit_bus(settings("amqp://guest:guest@127.0.0.1/%2F"), "embedding").accept is None


def test_definitions_give_each_service_least_privilege() -> None:
    passwords = BusPasswords(**{s: f"a-long-password-{s}" for s in SERVICES})
    found = definitions(passwords, "v", "p-")
    users = {u["name"]: u for u in found["users"]}
    assert set(users) == {f"p-{s}" for s in SERVICES}
    stored = base64.b64decode(users["p-embedding"]["password_hash"])
    salt, digest = stored[:4], stored[4:]
    assert digest == hashlib.sha256(salt + b"a-long-password-embedding").digest()
    rights = {p["user"]: p for p in found["permissions"]}
    assert all(r["configure"] == "^$" for r in rights.values())
    assert rights["p-embedding"]["read"] == "^(bdisc\\.embed)$"
    assert rights["p-gateway"]["read"] == "^$" and rights["p-gateway"]["write"] == "^(bdisc)$"
    assert "bdisc\\.cluster\\.dead" in rights["p-orchestrator"]["read"]
    queues = {q["name"] for q in found["queues"]}
    assert len(queues) == 3 * len(stages.PREFETCH) and len(found["bindings"]) == len(queues)
    assert password_hash("x", b"salt") == password_hash("x", b"salt")
    with pytest.raises(ValueError):
        BusPasswords(**{s: "change-me-please" for s in SERVICES})
