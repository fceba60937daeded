"""Tell a project's webhook when one of its jobs ends.

POST JSON ``{"event": "job.done" | "job.failed" | "job.cancelled", "job_id", "project",
"status", "error", "progress"}`` with ``X-Bdisc-Signature: sha256=<HMAC-SHA256 of the body
with the project's webhook secret>``, so the receiver can check it came from us. Failed
deliveries are retried a few times and logged; they never fail the job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from bdisc.logs import fields
from bdisc.ports.job_store import JobRecord

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Bdisc-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


class WebhookNotifier:
    def __init__(
        self,
        lookup: Callable[[str], tuple[str, str] | None],
        attempts: int = 3,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
    ) -> None:
        """``lookup(project) -> (url, secret)`` or None when the project has no webhook."""
        self.lookup, self.attempts = lookup, attempts
        self.timeout_s, self.backoff_s = timeout_s, backoff_s

    def __call__(self, job: JobRecord, progress: dict[str, Any]) -> bool:
        target = self.lookup(job.project)
        if target is None or not target[0]:
            return False
        url, secret = target
        body = json.dumps(
            {
                "event": f"job.{job.status}",
                "job_id": job.id,
                "project": job.project,
                "status": job.status,
                "error": job.error,
                "progress": progress,
            },
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            "X-Bdisc-Event": f"job.{job.status}",
        }
        import httpx

        for attempt in range(self.attempts):
            try:
                response = httpx.post(url, content=body, headers=headers, timeout=self.timeout_s)
                if response.status_code < 300:
                    return True
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = repr(exc)
            log.warning(
                "webhook delivery failed",
                extra=fields(job_id=job.id, url=url, attempt=attempt + 1, error=error),
            )
            time.sleep(self.backoff_s * 2**attempt)
        return False
