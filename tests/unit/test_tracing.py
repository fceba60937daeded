"""Trace context: off unless configured; when on, it travels with every message (and
survives a retry) so the consumer's span continues the sender's trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bdisc import tracing
from bdisc.app.messages import Cancel, read, to_message
from bdisc.ports.message_bus import Message


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.setup("unit", exporter=exporter)
    yield exporter
    tracing.setup("unit")


def test_off_by_default_costs_nothing_and_carries_nothing() -> None:
    assert not tracing.setup("unit", endpoint="")  # an empty BDISC_OTLP_ENDPOINT: off
    with tracing.span("ignored", job_id="j"):
        assert tracing.carrier() == {}
    assert to_message("j", "k", Cancel()).trace == {}


def test_messages_carry_the_senders_trace_through_the_wire_and_retries(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.span("sender"):
        message = to_message("j", "k", Cancel())
    assert message.trace["traceparent"].startswith("00-")
    received = Message.from_bytes(message.retried().to_bytes())
    assert received.attempt == 1 and received.trace == message.trace
    assert read(received) == Cancel()
    with tracing.span("consumer", received.trace, "consumer", job_id="j"):
        pass
    sender, consumer = sorted(spans.get_finished_spans(), key=lambda s: s.name != "sender")
    assert consumer.context.trace_id == sender.context.trace_id
    assert consumer.parent is not None and consumer.parent.span_id == sender.context.span_id
    assert consumer.attributes == {"job_id": "j"}


def test_a_failure_is_recorded_on_its_span(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError), tracing.span("doomed"):
        raise ValueError("boom")
    (doomed,) = spans.get_finished_spans()
    assert doomed.status.status_code.name == "ERROR"
    assert doomed.events[0].name == "exception"
