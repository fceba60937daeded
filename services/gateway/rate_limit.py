"""Requests per key: a token bucket for every API key (an address without a key has one
of its own), so that one client cannot take the gateway from the others. A request past
its bucket is answered 429 with ``Retry-After``; health, readiness and metrics are not
counted. Buckets live in the gateway process (each replica counts its own requests).
"""

from __future__ import annotations

import math
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from bdisc.errors import TooManyRequests
from gateway.body_guard import error_response, request_key

IDLE_S = 300.0  # a bucket unused this long is forgotten
MAX_BUCKETS = 10_000


class RateLimit:
    def __init__(self, app: ASGIApp, per_s: float, burst: int) -> None:
        self.app, self.per_s, self.burst = app, per_s, max(1, burst)
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.per_s <= 0 or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        key = request_key(scope) or f"address:{(scope.get('client') or ('?', 0))[0]}"
        wait_s = self.take(key, time.monotonic())
        if wait_s > 0:
            error = TooManyRequests(f"too many requests: at most {self.per_s:g} per second")
            retry = [(b"retry-after", str(math.ceil(wait_s)).encode())]
            await error_response(send, error, retry)
            return
        await self.app(scope, receive, send)

    def take(self, key: str, now: float) -> float:
        """Take a token: 0 if there was one, else the seconds until there is."""
        if len(self.buckets) > MAX_BUCKETS:
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < IDLE_S}
        tokens, when = self.buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.per_s)
        if tokens < 1.0:
            self.buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_s
        self.buckets[key] = (tokens - 1.0, now)
        return 0.0
