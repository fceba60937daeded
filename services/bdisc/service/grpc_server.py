"""Start a gRPC server with ``grpc.health.v1`` reporting SERVING for its services.

With a token, every call but the health checks must carry ``authorization: Bearer
<token>`` (else UNAUTHENTICATED): the services' shared secret, so that reaching the port
is not enough to use it (NetworkPolicies are a second fence, and compose has none).

Every call runs inside ``job_context`` of its ``x-job-id`` metadata (so each log line of
it names the job) and in a span that continues the caller's ``traceparent``; a
BdiscError it raises becomes its status code (``grpc_code``: the one mapping; servicers
only raise), and it ends with one log line: method, duration, outcome.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bdisc import tracing
from bdisc.errors import BdiscError, grpc_code
from bdisc.logs import fields, job_context

log = logging.getLogger(__name__)
JOB_ID_METADATA = "x-job-id"


@contextlib.contextmanager
def _call_context(method: str, context: grpc.ServicerContext) -> Iterator[None]:
    """The caller's job (for the logs) and trace (this call's span is its child)."""
    metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
    job_id = metadata.get(JOB_ID_METADATA, "")
    with job_context(job_id), tracing.span(method.lstrip("/"), metadata, "server", job_id=job_id):
        yield


def _logged(method: str, behavior: Callable[..., Any], streams_out: bool) -> Callable[..., Any]:
    def finish(started: float, context: grpc.ServicerContext, failed: bool) -> None:
        code = context.code()  # set by abort(); None when the call returned normally
        outcome = code.name if code is not None else ("UNKNOWN" if failed else "OK")
        elapsed_ms = round(1000 * (time.monotonic() - started))
        log.info("rpc", extra=fields(method=method, ms=elapsed_ms, code=outcome))

    if streams_out:

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with _call_context(method, context):
                started, failed = time.monotonic(), True
                try:
                    yield from behavior(request, context)
                    failed = False
                except BdiscError as exc:
                    context.abort(grpc.StatusCode[grpc_code(exc)], exc.message)
                finally:
                    finish(started, context, failed)

        return stream

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        with _call_context(method, context):
            started, failed = time.monotonic(), True
            try:
                result = behavior(request, context)
                failed = False
                return result
            except BdiscError as exc:
                context.abort(grpc.StatusCode[grpc_code(exc)], exc.message)
            finally:
                finish(started, context, failed)

    return unary


def _refused(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid 'authorization: Bearer' token")


class _JobContextInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, token: str | None = None) -> None:
        self.expected = f"Bearer {token}".encode() if token else None

    def _authorised(self, details: Any) -> bool:
        if self.expected is None:
            return True
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        return hmac.compare_digest(str(given).encode(), self.expected)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith("/grpc.health"):
            return handler
        authorised = self._authorised(details)
        for kind, make in (
            ("unary_unary", grpc.unary_unary_rpc_method_handler),
            ("unary_stream", grpc.unary_stream_rpc_method_handler),
            ("stream_unary", grpc.stream_unary_rpc_method_handler),
            ("stream_stream", grpc.stream_stream_rpc_method_handler),
        ):
            behavior = getattr(handler, kind)
            if behavior is not None:
                return make(
                    _logged(details.method, behavior, kind.endswith("_stream"))
                    if authorised
                    else _refused,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler


MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a 4096 x 4096 tile's PNG fits


def start(
    add_servicers: Callable[[grpc.Server], None],
    services: list[str],
    port: int,
    host: str = "127.0.0.1",
    max_workers: int = 4,
    token: str | None = None,
) -> tuple[grpc.Server, int]:
    """Returns the started server and its port (port 0: any free port); with ``token``,
    calls must carry it (``authorization: Bearer <token>``)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[_JobContextInterceptor(token)],
        options=[  # requests stay at gRPC's 4 MiB; a big tile's image may be larger
            ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ],
    )
    add_servicers(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound
