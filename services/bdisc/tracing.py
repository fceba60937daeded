"""One job, one trace: OpenTelemetry spans per HTTP request, per message a stage handles
and per gRPC call, linked by a W3C ``traceparent`` that travels with every message
(the envelope's ``trace``, copied into AMQP headers) and in gRPC metadata.

Off unless configured: ``setup(service, endpoint)`` with ``BDISC_OTLP_ENDPOINT`` (an
OTLP/HTTP collector, e.g. ``http://otel-collector:4318``; Jaeger, Tempo and any OTLP
backend read it) exports every span in batches; tests pass an in-memory exporter.
Without it, spans are no-ops that cost nothing and carry no context. The library
works without OpenTelemetry installed (the ``platform`` extra brings it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

Carrier = dict[str, str]

_tracer: Any = None  # set by setup(); None: tracing is off


def setup(service: str, endpoint: str | None = None, exporter: Any = None) -> bool:
    """Export this process's spans (as ``service``) to an OTLP/HTTP ``endpoint``, or to
    ``exporter`` (tests); nothing given: tracing stays off. Returns whether it is on."""
    global _tracer
    if not endpoint and exporter is None:
        _tracer = None
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        url = url if url.endswith("/v1/traces") else url + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _tracer = provider.get_tracer("bdisc")
    return True


def enabled() -> bool:
    return _tracer is not None


@contextlib.contextmanager
def span(
    name: str,
    parent: Mapping[str, str] | None = None,
    kind: str = "internal",
    **attributes: str | int | float,
) -> Iterator[None]:
    """A span (a child of ``parent``, a carrier that came with a message or a request,
    else of the current span) that is current while the block runs. An exception that
    leaves the block is recorded on it."""
    if _tracer is None:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract(dict(parent)) if parent else None
    kinds = {
        "internal": trace.SpanKind.INTERNAL,
        "server": trace.SpanKind.SERVER,
        "client": trace.SpanKind.CLIENT,
        "producer": trace.SpanKind.PRODUCER,
        "consumer": trace.SpanKind.CONSUMER,
    }
    with _tracer.start_as_current_span(
        name, context=context, kind=kinds[kind], attributes=attributes
    ):
        yield


def rename(name: str) -> None:
    """Rename the current span (an HTTP request's, once its route is known)."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().update_name(name)


def carrier() -> Carrier:
    """The current span's context as W3C headers (``traceparent``, ``tracestate``), to
    send along; empty when tracing is off or no span is current."""
    if _tracer is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    out: Carrier = {}
    TraceContextTextMapPropagator().inject(out)
    return out
