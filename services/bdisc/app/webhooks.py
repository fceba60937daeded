"""Tell a project's webhook when one of its jobs ends.

POST JSON ``{"event": "job.done" | "job.failed" | "job.cancelled", "job_id", "project",
"status", "error", "progress", "delivery", "sent_at"}`` with ``X-Bdisc-Signature:
sha256=<HMAC-SHA256 of the body with the project's webhook secret>``: the receiver checks
it came from us, and ``delivery`` (unique) and ``sent_at`` let it refuse replays.

Deliveries never hold up the orchestrator: they are sent from a background thread, with
a few retries inside a total deadline, reading only the answer's status. Targets must
be public: a URL whose host resolves to a private, loopback, link-local or otherwise
internal address (the cloud's metadata service, the broker's console, the database) is
refused when it is set and again before each delivery, and the delivery connects to the
address that was checked (the URL's host goes in ``Host`` and TLS's SNI), so a name
that resolves differently a moment later (DNS rebinding) cannot redirect it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from bdisc.errors import ConfigError
from bdisc.logs import fields
from bdisc.ports.job_store import JobRecord

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Bdisc-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


Resolver = Callable[..., list[tuple[Any, ...]]]  # socket.getaddrinfo's shape


def check_target(url: str, allow_private: bool = False) -> None:
    """ConfigError unless ``url`` is http(s) to a host that resolves to public addresses
    only (``allow_private``: development stacks and tests on one machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("webhook URLs are http:// or https:// with a host")
    if not allow_private:
        checked_addresses(url)


def checked_addresses(
    url: str, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> list[str]:
    """The addresses to deliver to, in the resolver's order, after every address the host
    resolves to was found public (unless ``allow_private``); else ConfigError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("webhook URLs are http:// or https:// with a host")
    try:
        found = resolve(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"webhook host {parts.hostname!r} does not resolve") from exc
    addresses = [ipaddress.ip_address(str(a[0]).split("%")[0]) for *_, a in found]
    if not addresses:
        raise ConfigError(f"webhook host {parts.hostname!r} does not resolve")
    for ip in addresses:
        if not allow_private and (not ip.is_global or ip.is_multicast):
            raise ConfigError(
                f"webhook host {parts.hostname!r} is an internal address ({ip}): refused"
            )
    return list(dict.fromkeys(str(ip) for ip in addresses))


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by ``address`` (and no credentials: see
    ``credentials``); the Host header and the request's extensions (TLS's server name)
    that keep it addressed to the original host, in its ASCII (IDNA) form."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    try:
        name = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ConfigError(f"webhook host {parts.hostname!r} is not a valid name") from exc
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    original = name if parts.port is None else f"{name}:{parts.port}"
    if ":" in parts.hostname:  # an IPv6 literal keeps its brackets in Host
        original = f"[{parts.hostname}]" + ("" if parts.port is None else f":{parts.port}")
    extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": original}, extensions


def credentials(url: str) -> tuple[str, str] | None:
    """Basic-auth credentials written into the URL (``https://user:pass@host/``), if any."""
    parts = urlsplit(url)
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


class WebhookNotifier:
    def __init__(
        self,
        lookup: Callable[[str], tuple[str, str] | None],
        attempts: int = 3,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        deadline_s: float = 60.0,
        allow_private: bool = False,
        resolve: Resolver = socket.getaddrinfo,
    ) -> None:
        """``lookup(project) -> (url, secret)`` or None when the project has no webhook."""
        self.lookup, self.attempts = lookup, attempts
        self.timeout_s, self.backoff_s, self.deadline_s = timeout_s, backoff_s, deadline_s
        self.allow_private, self.resolve = allow_private, resolve
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bdisc-webhook")

    def __call__(self, job: JobRecord, progress: dict[str, Any]) -> Future[bool] | None:
        """Queue the delivery of a job's end; returns its future (None: no webhook)."""
        target = self.lookup(job.project)
        if target is None or not target[0]:
            return None
        return self._pool.submit(self.deliver, job, progress, *target)

    def deliver(self, job: JobRecord, progress: dict[str, Any], url: str, secret: str) -> bool:
        body = json.dumps(
            {
                "event": f"job.{job.status}",
                "job_id": job.id,
                "project": job.project,
                "status": job.status,
                "error": job.error,
                "progress": progress,
                "delivery": uuid.uuid4().hex,
                "sent_at": datetime.now(UTC).isoformat(),
            },
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            "X-Bdisc-Event": f"job.{job.status}",
        }
        import httpx

        started = time.monotonic()
        for attempt in range(self.attempts):
            error = ""
            try:
                # checked again (DNS may have changed), and only those addresses are used:
                # the next one when one does not answer (a host with several)
                for address in checked_addresses(url, self.allow_private, self.resolve):
                    try:
                        status = self._post(url, address, body, headers, started)
                    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                        error = repr(exc)
                        continue
                    if status < 300:
                        return True
                    error = f"HTTP {status}"
                    break
            except (httpx.HTTPError, ConfigError) as exc:
                error = repr(exc)
            log.warning(
                "webhook delivery failed",
                extra=fields(job_id=job.id, url=url, attempt=attempt + 1, error=error),
            )
            pause = self.backoff_s * 2**attempt
            if time.monotonic() - started + pause >= self.deadline_s:
                break
            time.sleep(pause)
        return False

    def _post(
        self, url: str, address: str, body: bytes, headers: dict[str, str], started: float
    ) -> int:
        """POST to ``address`` (the URL's host kept in Host and TLS's server name) within
        what is left of the deadline; the answer's status."""
        import httpx

        target, host, extensions = pinned(url, address)
        left = self.deadline_s - (time.monotonic() - started)
        timeout = httpx.Timeout(min(self.timeout_s, max(left, 0.1)))
        with httpx.Client(timeout=timeout, auth=credentials(url)) as client:
            request = client.build_request(
                "POST", target, content=body, headers={**headers, **host}, extensions=extensions
            )
            # the status only: a hostile endpoint cannot make us read a large body
            r = client.send(request, stream=True)
            r.close()
            return r.status_code

    def close(self) -> None:
        self._pool.shutdown(wait=True)
