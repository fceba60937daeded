"""MessageBus inside one process (embedded mode, tests): same semantics, no broker."""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from bdisc.errors import describe, is_retryable
from bdisc.ports.message_bus import (
    BatchHandler,
    DeadLetter,
    Handler,
    MalformedMessage,
    Message,
)


class InProcessBus:
    def __init__(self, max_retries: int = 3, backoff_s: float = 0.0) -> None:
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self._queues: dict[str, queue.Queue[bytes]] = defaultdict(queue.Queue)
        self._dead: dict[str, list[DeadLetter]] = defaultdict(list)
        self._outbox: list[Message] | None = None  # a running handler's messages

    def publish(self, message: Message) -> None:
        if self._outbox is not None:
            self._outbox.append(message)  # sent once the handler succeeded
            return
        self._queues[message.stage].put(message.to_bytes())

    def publish_many(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self.publish(message)

    def publish_raw(self, stage: str, body: bytes) -> None:
        """For tests of malformed input: put bytes on a stage's queue as they are."""
        self._queues[stage].put(body)

    def consume(
        self,
        stage: str,
        handler: Handler,
        *,
        max_messages: int | None = None,
        idle_timeout_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> int:
        settled = 0
        while (max_messages is None or settled < max_messages) and not (stop and stop.is_set()):
            try:
                body = self._queues[stage].get(timeout=idle_timeout_s)
            except queue.Empty:
                break
            message = self._parse(stage, body)
            if message is None or self._settle(stage, handler, body, message):
                settled += 1
        return settled

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
        settled = 0
        while (max_messages is None or settled < max_messages) and not (stop and stop.is_set()):
            room = max_batch if max_messages is None else min(max_batch, max_messages - settled)
            try:
                bodies = [self._queues[stage].get(timeout=idle_timeout_s)]
            except queue.Empty:
                break
            while len(bodies) < room:  # and what else is there now
                try:
                    bodies.append(self._queues[stage].get_nowait())
                except queue.Empty:
                    break
            batch: list[tuple[bytes, Message]] = []
            for body in bodies:
                message = self._parse(stage, body)
                if message is None:
                    settled += 1
                else:
                    batch.append((body, message))
            if not batch:
                continue
            outbox: list[Message] = []
            self._outbox = outbox
            try:
                handle_batch([m for _, m in batch])
            except Exception:
                self._outbox = None
                for body, message in batch:  # one at a time, with retries and dead letters
                    settled += self._settle(stage, handler, body, message)
                continue
            self._outbox = None
            self.publish_many(outbox)
            settled += len(batch)
        return settled

    def _parse(self, stage: str, body: bytes) -> Message | None:
        """The message; None when it was malformed (and dead-lettered)."""
        try:
            return Message.from_bytes(body)
        except MalformedMessage as exc:
            self._dead[stage].append(DeadLetter(body, exc.message, stage))
            return None

    def _settle(self, stage: str, handler: Handler, body: bytes, message: Message) -> bool:
        """Handle one message; True when it was settled (done or dead-lettered), False
        when it went back to the queue for another attempt."""
        outbox: list[Message] = []
        self._outbox = outbox
        try:
            handler(message)
        except Exception as exc:
            self._outbox = None
            kind, text = describe(exc)
            if is_retryable(exc) and message.attempt < self.max_retries:
                time.sleep(self.backoff_s * 2**message.attempt)
                self.publish(message.retried())
                return False
            self._dead[stage].append(DeadLetter(body, f"{kind}: {text}", stage))
            return True
        self._outbox = None
        for produced in outbox:
            self.publish(produced)
        return True

    def dead_letters(self, stage: str) -> list[DeadLetter]:
        dead, self._dead[stage] = self._dead[stage], []
        return dead

    def settle_dead_letters(self, stage: str, handle: Callable[[DeadLetter], None]) -> int:
        settled = 0
        while self._dead[stage]:
            handle(self._dead[stage][0])  # raises: the letter stays
            self._dead[stage].pop(0)
            settled += 1
        return settled

    def close(self) -> None:
        pass
