"""How stages hand work to each other: RabbitMQ when deployed, an in-process queue embedded.

Delivery is at least once: a message is acknowledged only after its handler returned,
so handlers must be idempotent (deterministic output keys; existing output = done).
A handler that raises Retryable is retried with exponential backoff up to
``max_retries`` times; any other exception, or a message that does not parse, goes to
the stage's dead-letter queue at once, with the error attached.

A consumer may also take its messages in batches (``consume_batches``: the one writer of
job state settles a batch in one database transaction): the batch handler gets the
messages delivered now, whatever they publish is sent together once it returned, and
only then are they all acknowledged. A batch whose handler raises is handled again one
message at a time, with the per-message retries and dead letters above, so one poison
message neither blocks nor loses the others.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from bdisc.errors import UserError

# The contract's version (messages.py): 2 since its payloads became typed models.
SCHEMA_VERSION = 2


class MalformedMessage(UserError):
    """A message body that is not a bdisc message of a known version."""


@dataclass(frozen=True)
class Message:
    stage: str
    job_id: str
    idempotency_key: str  # same work, same key: the consumer may skip it
    payload: dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION
    attempt: int = 0
    trace: dict[str, str] = field(default_factory=dict)  # W3C traceparent of the sender
    # delivered before and not acknowledged (the broker's flag; not part of the body):
    # its handler may have committed without what it published being sent
    redelivered: bool = field(default=False, compare=False)
    # the bus user that published it (RabbitMQ's checked user_id; "" in process): the
    # transport's to say, like ``redelivered``
    sender: str = field(default="", compare=False)

    def retried(self) -> Message:
        """The same message, for its next attempt."""
        return replace(self, attempt=self.attempt + 1)

    def to_bytes(self) -> bytes:
        body = asdict(self)
        del body["redelivered"], body["sender"]  # the transport's to say
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, body: bytes, *, any_version: bool = False) -> Message:
        """The envelope; MalformedMessage unless it is one of this version (or of any
        version, to attribute a dead letter to its job)."""
        try:
            data = json.loads(body)
            message = cls(
                stage=str(data["stage"]),
                job_id=str(data["job_id"]),
                idempotency_key=str(data["idempotency_key"]),
                payload=dict(data.get("payload") or {}),
                version=int(data.get("version", 0)),
                attempt=int(data.get("attempt", 0)),
                trace={str(k): str(v) for k, v in (data.get("trace") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessage(f"not a bdisc message: {exc}") from exc
        if message.version != SCHEMA_VERSION and not any_version:
            raise MalformedMessage(
                f"message schema version {message.version}, expected {SCHEMA_VERSION}"
            )
        return message


@dataclass(frozen=True)
class DeadLetter:
    body: bytes
    error: str
    stage: str


Handler = Callable[[Message], None]
BatchHandler = Callable[[Sequence[Message]], None]


class MessageBus(Protocol):
    def publish(self, message: Message) -> None:
        """Durably hand over a message (confirmed by the broker when deployed)."""
        ...

    def publish_many(self, messages: Sequence[Message]) -> None:
        """Durably hand over several messages, the broker's confirms awaited once."""
        ...

    def consume(
        self,
        stage: str,
        handler: Handler,
        *,
        max_messages: int | None = None,
        idle_timeout_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> int:
        """Handle messages of ``stage`` until ``max_messages`` were settled, none came for
        ``idle_timeout_s``, or ``stop`` is set (checked between messages, so the message in
        hand is always finished); returns how many were settled (done or dead-lettered)."""
        ...

    def consume_batches(
        self,
        stage: str,
        handle_batch: BatchHandler,
        handler: Handler,
        *,
        max_batch: int = 32,
        max_messages: int | None = None,
        idle_timeout_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> int:
        """Like ``consume``, but ``handle_batch`` gets the messages delivered now (at most
        ``max_batch``, which is also how many the consumer takes from the broker at a
        time); what it publishes goes out together after it returned, then the batch is
        acknowledged. If it raises, nothing it published is sent and each message is
        settled alone by ``handler`` (retried or dead-lettered as by ``consume``).
        Malformed messages are dead-lettered before the batch is formed."""
        ...

    def dead_letters(self, stage: str) -> list[DeadLetter]:
        """Drain and return the stage's dead-letter queue."""
        ...

    def settle_dead_letters(self, stage: str, handle: Callable[[DeadLetter], None]) -> int:
        """Hand the stage's dead letters to ``handle`` one at a time, each removed only
        after ``handle`` returned (a crash in between leaves it in the queue); if it
        raises, that letter stays and the error propagates. Returns how many."""
        ...

    def close(self) -> None: ...
