"""MessageBus inside one process (embedded mode, tests): same semantics, no broker."""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict

from bdisc.errors import describe, is_retryable
from bdisc.ports.message_bus import DeadLetter, Handler, MalformedMessage, Message


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
            try:
                message = Message.from_bytes(body)
            except MalformedMessage as exc:
                self._dead[stage].append(DeadLetter(body, exc.message, stage))
                settled += 1
                continue
            outbox: list[Message] = []
            self._outbox = outbox
            try:
                handler(message)
                self._outbox = None
                for produced in outbox:
                    self.publish(produced)
                settled += 1
            except Exception as exc:
                self._outbox = None
                kind, text = describe(exc)
                if is_retryable(exc) and message.attempt < self.max_retries:
                    time.sleep(self.backoff_s * 2**message.attempt)
                    self.publish(message.retried())
                else:
                    self._dead[stage].append(DeadLetter(body, f"{kind}: {text}", stage))
                    settled += 1
        return settled

    def dead_letters(self, stage: str) -> list[DeadLetter]:
        dead, self._dead[stage] = self._dead[stage], []
        return dead

    def close(self) -> None:
        pass
