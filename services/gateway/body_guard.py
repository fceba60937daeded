"""Before any request body is read: the caller's key is checked, and the body is capped.

An ASGI middleware outside FastAPI, because FastAPI reads (and spools) a body before it
runs the route's dependencies: without it, anyone could fill the gateway's memory or
temporary space with a request that would be refused afterwards. A request that changes
something in a project (``/v1/projects/{project}/...``, any method but GET/HEAD/OPTIONS)
must carry that project's key (401 or 403 before a byte of its body is read). Bodies are
capped by ``Content-Length`` at once and by counting while they stream (413): recording
and file uploads at the gateway's upload limit, label imports at 16 MiB, every other
body (JSON) at 1 MiB.
"""

from __future__ import annotations

import json
import re

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bdisc.errors import BdiscError, Forbidden, TooLarge, Unauthorized, describe, http_status
from gateway.deps import SAFE_METHODS, SESSION_COOKIE, Deps, api_key

JSON_LIMIT = 1 << 20
IMPORT_LIMIT = 16 << 20
PROJECT_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/")
UPLOAD_PATH = re.compile(r"^/v1/projects/[^/]+/(audio|files)/?$")
IMPORT_PATH = re.compile(r":import$")


class _BodyTooLarge(Exception):
    pass


class BodyGuard:
    def __init__(self, app: ASGIApp, deps: Deps) -> None:
        self.app, self.deps = app, deps

    def limit(self, path: str) -> int:
        if UPLOAD_PATH.match(path):
            return self.deps.max_upload_bytes
        return IMPORT_LIMIT if IMPORT_PATH.search(path) else JSON_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        try:
            headers = _headers(scope)
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                raise TooLarge(f"request body larger than {limit} bytes")
            await self._check_key(scope["path"], headers)
        except BdiscError as exc:
            await error_response(send, exc)
            return
        seen = 0
        over = False  # the body passed the cap: whatever the app answers, it is a 413
        started = replied = False
        too_large = TooLarge(f"request body larger than {limit} bytes")

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started, replied
            if over:  # the app's own answer to a body cut short (400, 422) is replaced
                if not replied and not started:
                    replied = True
                    await error_response(send, too_large)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _BodyTooLarge:
            if started:
                raise
        if over and not replied and not started:
            await error_response(send, too_large)

    async def _check_key(self, path: str, headers: dict[str, str]) -> None:
        found = PROJECT_PATH.match(path)
        if found is None:
            return
        key = headers.get("x-api-key") or _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        project = await run_in_threadpool(
            self.deps.projects.by_key, api_key(key, headers.get("authorization"))
        )
        if project is None:
            raise Unauthorized("unknown API key")
        if project.id != found["project"]:
            raise Forbidden(f"this key belongs to another project than {found['project']!r}")


def request_key(scope: Scope) -> str | None:
    """The API key a request carries (header, bearer or the review app's cookie), if any."""
    headers = _headers(scope)
    auth = headers.get("authorization", "")
    bearer = auth[7:] if auth.lower().startswith("bearer ") else None
    cookie = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
    return headers.get("x-api-key") or bearer or cookie


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def error_response(
    send: Send, exc: BdiscError, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """The error as the gateway answers every error: JSON with its kind and message."""
    kind, message = describe(exc)
    body = json.dumps({"error": kind, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": http_status(exc),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
