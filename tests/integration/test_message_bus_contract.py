"""One contract, two buses: in-process and RabbitMQ (the machine's real broker)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from bdisc.adapters.inprocess_bus import InProcessBus
from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.errors import ConfigError, Retryable
from bdisc.ports.message_bus import Message, MessageBus


@pytest.fixture(params=["inprocess", "rabbitmq"])
def bus(request: pytest.FixtureRequest) -> Iterator[MessageBus]:
    if request.param == "inprocess":
        yield InProcessBus(max_retries=3)
        return
    rabbit = RabbitBus(request.getfixturevalue("rabbit_url"), max_retries=3, backoff_s=0.05)
    yield rabbit
    rabbit.close()


@pytest.fixture
def stage() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def msg(stage: str, n: int) -> Message:
    return Message(stage, "job-1", f"key-{n}", {"n": n, "file": f"site/r{n}.wav"})


def test_messages_arrive_once_in_order_with_payload(bus: MessageBus, stage: str) -> None:
    for n in range(3):
        bus.publish(msg(stage, n))
    seen: list[Message] = []
    assert bus.consume(stage, seen.append, idle_timeout_s=0.5) == 3
    assert [m.payload["n"] for m in seen] == [0, 1, 2]
    assert seen[0].job_id == "job-1" and seen[0].idempotency_key == "key-0"
    assert bus.consume(stage, seen.append, idle_timeout_s=0.3) == 0  # acknowledged: gone


def test_transient_failures_are_retried(bus: MessageBus, stage: str) -> None:
    bus.publish(msg(stage, 7))
    attempts: list[int] = []

    def flaky(m: Message) -> None:
        attempts.append(m.attempt)
        if len(attempts) < 3:
            raise Retryable("S3 hiccup")

    bus.consume(stage, flaky, idle_timeout_s=1.0)
    assert attempts == [0, 1, 2]
    assert bus.dead_letters(stage) == []


def test_retries_run_out_into_the_dead_letter_queue(bus: MessageBus, stage: str) -> None:
    bus.publish(msg(stage, 1))
    calls: list[int] = []

    def down(m: Message) -> None:
        calls.append(m.attempt)
        raise Retryable("still down")

    bus.consume(stage, down, idle_timeout_s=1.0)
    assert calls == [0, 1, 2, 3]
    dead = bus.dead_letters(stage)
    assert len(dead) == 1 and "Retryable: still down" in dead[0].error


def test_permanent_errors_and_garbage_go_straight_to_dead_letters(
    bus: MessageBus, stage: str
) -> None:
    bus.publish(msg(stage, 1))
    bus.publish_raw(stage, b"{not json")  # type: ignore[attr-defined]
    bus.publish_raw(
        stage,
        b'{"stage": "x", "job_id": "j", "idempotency_key": "k", '  # type: ignore[attr-defined]
        b'"version": 99}',
    )
    calls: list[int] = []

    def broken(m: Message) -> None:
        calls.append(m.attempt)
        raise ConfigError("unsupported sample format")

    bus.consume(stage, broken, idle_timeout_s=0.5)
    assert calls == [0]
    errors = sorted(d.error for d in bus.dead_letters(stage))
    assert len(errors) == 3
    assert any("ConfigError: unsupported sample format" in e for e in errors)
    assert any("not a bdisc message" in e for e in errors)
    assert any("schema version 99" in e for e in errors)


def test_messages_a_handler_sends_leave_only_if_it_succeeds(bus: MessageBus, stage: str) -> None:
    follow_up = f"{stage}-next"
    bus.publish(msg(stage, 1))
    bus.publish(msg(stage, 2))

    def forward(m: Message) -> None:
        bus.publish(Message(follow_up, m.job_id, f"next-{m.payload['n']}", m.payload))
        if m.payload["n"] == 2:
            raise ConfigError("fails after publishing")

    bus.consume(stage, forward, idle_timeout_s=0.5)
    forwarded: list[Message] = []
    bus.consume(follow_up, forwarded.append, idle_timeout_s=0.5)
    assert [m.payload["n"] for m in forwarded] == [1]
    assert len(bus.dead_letters(stage)) == 1


CRASHING_CONSUMER = """
import os, sys
from bdisc.adapters.rabbitmq_bus import RabbitBus
bus = RabbitBus(sys.argv[1])
def die(message):
    os._exit(9)  # like kill -9 in the middle of the work: no ack is ever sent
bus.consume(sys.argv[2], die, idle_timeout_s=5)
"""


def test_work_of_a_killed_consumer_is_redelivered(rabbit_url: str, stage: str) -> None:
    bus = RabbitBus(rabbit_url)
    try:
        bus.publish(msg(stage, 42))
        done = subprocess.run(
            [sys.executable, "-c", CRASHING_CONSUMER, rabbit_url, stage], timeout=60
        )
        assert done.returncode == 9
        seen: list[Message] = []
        assert bus.consume(stage, seen.append, idle_timeout_s=2.0) == 1
        assert seen[0].payload["n"] == 42
    finally:
        bus.close()


def test_a_fast_handler_is_settled_at_once_not_at_a_poll_tick(bus: MessageBus, stage: str) -> None:
    """The consumer is woken when the handler returns: 20 messages whose handler takes
    5 ms (a database write) settle in well under the 20 x 0.5 s that waiting for the I/O
    loop's half-second tick cost (measured before the fix: 505 ms per message)."""
    for n in range(20):
        bus.publish(msg(stage, n))
    seen: list[int] = []

    def handler(m: Message) -> None:
        time.sleep(0.005)
        seen.append(m.payload["n"])

    started = time.monotonic()
    assert bus.consume(stage, handler, max_messages=20) == 20
    elapsed = time.monotonic() - started
    assert seen == list(range(20))
    assert elapsed < 5.0, f"{elapsed:.1f} s for 20 messages"
