"""Work that died (poison messages, exhausted retries, crash loops past the broker's
delivery limit) must still end its job: each dead letter becomes a failure event for the
orchestrator, naming the recording or deployment and the error."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bdisc.app import stages
from bdisc.logs import fields
from bdisc.ports.message_bus import MalformedMessage, Message, MessageBus

log = logging.getLogger(__name__)

FAILED_KIND = {
    stages.INGEST: stages.PLAN_FAILED,
    stages.EMBED: stages.EMBED_FAILED,
    stages.CLUSTER: stages.CLUSTER_FAILED,
    stages.EXPORT: stages.EXPORT_FAILED,
    stages.EVALUATE: stages.EVALUATE_FAILED,
}


def report_dead_letters(bus: MessageBus, watched: Sequence[str] = tuple(FAILED_KIND)) -> int:
    """Drain the dead-letter queues of ``watched`` stages; returns how many were reported."""
    reported = 0
    for stage in watched:
        for dead in bus.dead_letters(stage):
            try:
                message = Message.from_bytes(dead.body)
            except MalformedMessage:
                log.error(
                    "unattributable dead letter dropped",
                    extra=fields(stage=stage, error=dead.error, body=dead.body[:200]),
                )
                continue
            kind = FAILED_KIND[stage]
            if stages.is_link(message.payload):  # the fan-in step on the cluster queue
                kind = stages.LINK_FAILED
            payload = {
                "kind": kind,
                "round": message.payload.get("round", ""),
                "group": message.payload.get("group", ""),
                "error": f"dead-lettered: {dead.error}",
            }
            if stage == stages.EMBED:
                payload["key"] = message.payload.get("audio_key", "")
            bus.publish(
                Message(stages.EVENTS, message.job_id, f"{message.idempotency_key}:dead", payload)
            )
            reported += 1
    return reported
