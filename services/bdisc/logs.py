"""Structured logging: one line per event, as JSON (services) or key=value text (people).

Call sites attach fields with ``log.info("file done", extra=fields(path=..., windows=...))``.
The job being worked on is attached to every line by itself: the transports set it
(``job_context``) from the AMQP ``job_id`` header or the gRPC ``x-job-id`` metadata.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

_FIELDS = "bdisc_fields"
_JOB_ID: contextvars.ContextVar[str] = contextvars.ContextVar("bdisc_job_id", default="")


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Log lines emitted inside (in this thread or task) carry ``job_id``."""
    token = _JOB_ID.set(job_id)
    try:
        yield
    finally:
        _JOB_ID.reset(token)


class JobIdFilter(logging.Filter):
    """Stamps the current job id on the record when it is emitted (not when formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = _JOB_ID.get()
        if job_id:
            values = dict(_record_fields(record))
            values.setdefault("job_id", job_id)
            setattr(record, _FIELDS, values)
        return True


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra=`` argument that attaches structured fields to a log record."""
    return {_FIELDS: values}


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    value = getattr(record, _FIELDS, None)
    return dict(value) if isinstance(value, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update(_record_fields(record))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{record.levelname.lower():7s} {record.getMessage()}"]
        parts += [f"{k}={v}" for k, v in _record_fields(record).items()]
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def make_handler(stream: IO[str], fmt: str = "text") -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(JobIdFilter())
    return handler


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send bdisc's logs to stderr in the chosen format (idempotent)."""
    handler = make_handler(sys.stderr, fmt)
    root = logging.getLogger("bdisc")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
