"""Who may send what on the bus: the contract's messages by the service that sends them.

Each deployed service connects to RabbitMQ as a user of its own (``<prefix><service>``,
``bdisc-embedding``) and the bus stamps that user on every message it publishes as the
AMQP ``user_id``, which RabbitMQ checks against the connection's login: it cannot be
forged. A consumer with the check on (``BDISC_BUS_SENDERS=checked``) handles only what
its sender may send:

- work for a stage, and only that stage's work, comes from the orchestrator (or from the
  stage's own service: the retry it scheduled); the same holds for its dead letters, so
  a worker cannot fail another stage's items or a whole job through its own dead-letter
  queue;
- commands come from the gateway, and a stage's events (``embedded``, ``cluster_failed``)
  from that stage's service; the orchestrator may send any of them (the dead letters it
  turns into failures, its own retries).

A message from anyone else is dropped and logged, never handled: a compromised worker can
neither order work nor settle another stage's items.
"""

from __future__ import annotations

from dataclasses import dataclass

from bdisc.app import stages
from bdisc.app.messages import KINDS, Command, Work

GATEWAY, ORCHESTRATOR = "gateway", "orchestrator"

# The service that consumes each stage's queue.
SERVICE_OF_STAGE = {
    stages.INGEST: "ingestion",
    stages.EMBED: "embedding",
    stages.CLUSTER: "clustering",
    stages.EXPORT: "export",
    stages.EVALUATE: "evaluation",
    stages.TRAIN: "training",
    stages.EVENTS: ORCHESTRATOR,
}

# The stage whose service reports each event (the orchestrator's own are absent).
EVENT_STAGE = {
    "planned": stages.INGEST,
    "plan_failed": stages.INGEST,
    "embedded": stages.EMBED,
    "embed_failed": stages.EMBED,
    "clustered": stages.CLUSTER,
    "cluster_failed": stages.CLUSTER,
    "linked": stages.CLUSTER,
    "link_failed": stages.CLUSTER,
    "exported": stages.EXPORT,
    "export_failed": stages.EXPORT,
    "evaluated": stages.EVALUATE,
    "evaluate_failed": stages.EVALUATE,
    **{
        kind: stages.TRAIN
        for kind in (
            "trained",
            "train_failed",
            "classified",
            "classify_failed",
            "searched",
            "search_failed",
            "duplicates_found",
            "duplicates_failed",
            "suggested",
            "suggest_failed",
        )
    },
}
ORCHESTRATOR_ONLY = frozenset({"work_unreadable"})  # made of dead letters


def may_send(stage: str, kind: str) -> frozenset[str]:
    """The services that may send a message of ``kind`` on ``stage``'s queue (or, as
    its dead letter, on its dead-letter queue): nobody for a kind that does not travel
    there, such as a command or another stage's work on a work queue."""
    contract = KINDS.get(kind)
    if stage != stages.EVENTS:
        if contract is None or not issubclass(contract, Work) or contract.stage != stage:
            return frozenset()
        own = SERVICE_OF_STAGE.get(stage)
        return frozenset({ORCHESTRATOR, own} if own else {ORCHESTRATOR})
    if contract is not None and issubclass(contract, Command):
        return frozenset({GATEWAY, ORCHESTRATOR})
    if kind in EVENT_STAGE:
        return frozenset({SERVICE_OF_STAGE[EVENT_STAGE[kind]], ORCHESTRATOR})
    return frozenset({ORCHESTRATOR})  # work_unreadable, and kinds nobody else may send


@dataclass(frozen=True)
class SenderCheck:
    """Decides, for a consumer, whether a delivered message's sender may send it."""

    prefix: str = "bdisc-"  # the services' RabbitMQ users: <prefix><service>

    def service(self, user: str) -> str | None:
        """The service a RabbitMQ user is (None: not one of ours)."""
        return user[len(self.prefix) :] if user.startswith(self.prefix) and user else None

    def accepts(self, stage: str, message_stage: str, kind: str, user: str) -> bool:
        """Whether ``user`` may send a message of ``kind`` that says it is for
        ``message_stage`` on ``stage``'s queue."""
        service = self.service(user)
        return message_stage == stage and service is not None and service in may_send(stage, kind)
