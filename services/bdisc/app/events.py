"""How a stage tells the orchestrator what became of a message: one event on the events
stage, keyed by the message's idempotency key and the outcome (so a redelivered message
reports under the same key)."""

from __future__ import annotations

from typing import Any

from bdisc.app import stages
from bdisc.ports.message_bus import Message, MessageBus


def report_event(bus: MessageBus, message: Message, kind: str, **payload: Any) -> None:
    bus.publish(
        Message(
            stages.EVENTS,
            message.job_id,
            f"{message.idempotency_key}:{kind}",
            {"kind": kind, **payload},
        )
    )
