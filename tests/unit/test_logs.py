"""Structured logs: every line of a message's handling names its job."""

from __future__ import annotations

import io
import json
import logging

from bdisc.logs import job_context, make_handler


def test_job_context_stamps_lines_and_explicit_fields_win() -> None:
    stream = io.StringIO()
    log = logging.getLogger("bdisc.test.context")
    log.addHandler(make_handler(stream, "json"))
    log.setLevel(logging.INFO)
    with job_context("j1"):
        log.info("a")
        log.info("b", extra={"bdisc_fields": {"job_id": "other"}})
    log.info("c")
    rows = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r.get("job_id") for r in rows] == ["j1", "other", None]
