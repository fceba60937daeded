"""Prometheus metrics of the API: requests answered by method, route and status, and the
time to answer them, served on the metrics port (``BDISC_METRICS_PORT``, 9460), never on
the API's own port. Routes are the templates (``/v1/projects/{project}/jobs/{job_id}``),
so that ids never become label values; requests no route matched count as ``unmatched``."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "bdisc_http_requests_total", "API requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "bdisc_http_request_seconds",
    "time to answer an API request (to its first response bytes)",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UNMATCHED = "unmatched"


class RequestMetrics:
    """The outermost middleware: it sees every answer, 429s and 413s included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def sending(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                _observe(scope, int(message["status"]), time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if not answered:  # the client gets a 500 from the server
                _observe(scope, 500, time.perf_counter() - started)
            raise


# Methods are the client's to choose: any other counts as "other", so that no client can
# grow the label sets without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _observe(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    name = getattr(route, "path", None) or UNMATCHED
    method = str(scope.get("method", ""))
    method = method if method in METHODS else "other"
    REQUESTS.labels(method, name, str(status)).inc()
    LATENCY.labels(method, name).observe(seconds)
