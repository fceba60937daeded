"""``bdisc submit``: run a discovery job on a bdisc server as if it ran here.

Uploads a folder tree (one deployment per subfolder, as ``bdisc discover`` reads it),
starts a job with the given parameters, shows progress, and downloads the results into
``--out`` in the same layout ``bdisc discover`` writes locally. Recordings the project
already has (same path) are not uploaded again; files the server refuses are reported
and the rest goes on.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bdisc.audio.formats import iter_inputs
from bdisc.errors import ConfigError, Retryable, ServerError
from bdisc.logs import fields

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    job_id: str
    status: str
    uploaded: int = 0
    already_there: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    downloaded: int = 0


class Client:
    def __init__(self, api: str, key: str, timeout_s: float = 600.0) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=api.rstrip("/"), timeout=timeout_s, headers={"X-API-Key": key}
        )

    def _check(self, response: Any) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
                text = f"{body.get('error', '')}: {body.get('message', body)}"
            except ValueError:
                text = response.text[:200]
            raise ServerError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {text}",
                status=response.status_code,
            )
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._check(self.http.get(path, **kwargs))
        except httpx.TransportError as exc:
            raise Retryable(f"cannot reach the server: {exc}") from exc

    def post(self, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._check(self.http.post(path, **kwargs))
        except httpx.TransportError as exc:
            raise Retryable(f"cannot reach the server: {exc}") from exc


def submit(
    root: Path,
    api: str,
    key: str,
    job: dict[str, Any],
    out: Path | None,
    wait: bool = True,
    poll_s: float = 2.0,
    timeout_s: float = 24 * 3600,
) -> SubmitResult:
    if not root.is_dir():
        raise ConfigError(f"not a folder of recordings: {root}")
    client = Client(api, key)
    project = client.get("/v1/me").json()["project"]
    have = set(client.get(f"/v1/projects/{project}/audio").json()["recordings"])
    result = SubmitResult("", "")
    for _, path in iter_inputs([root]):
        rel = Path(os.path.relpath(path, root)).as_posix()
        if rel in have:
            result.already_there += 1
            continue
        with path.open("rb") as f:
            try:
                client.post(
                    f"/v1/projects/{project}/audio",
                    params={"path": rel},
                    files={"file": (path.name, f)},
                )
                result.uploaded += 1
            except ServerError as exc:
                result.refused.append((rel, exc.message))
                log.warning("refused by the server", extra=fields(path=rel, error=exc.message))
    log.info(
        f"{result.uploaded} uploaded, {result.already_there} already there, "
        f"{len(result.refused)} refused"
    )
    result.job_id = client.post(f"/v1/projects/{project}/jobs", json=job).json()["job_id"]
    log.info("job submitted", extra=fields(job_id=result.job_id))
    if not wait:
        result.status = "submitted"
        return result
    result.status = _wait(client, project, result.job_id, poll_s, timeout_s)
    if out is not None and result.status == "done":
        result.downloaded = _download(client, project, result.job_id, out)
    return result


PLAN_TIMEOUT_S = 300.0


def _wait(client: Client, project: str, job_id: str, poll_s: float, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    submitted = time.monotonic()
    last = None
    while time.monotonic() < deadline:
        status = client.get(f"/v1/projects/{project}/jobs/{job_id}").json()
        if status["status"] == "queued" and time.monotonic() - submitted > PLAN_TIMEOUT_S:
            raise Retryable(  # the job was accepted, but nothing has taken it since
                f"job {job_id} was not planned within {PLAN_TIMEOUT_S:.0f} s: "
                "is the orchestrator running?"
            )
        shown = (status["status"], str(status["progress"]))
        if shown != last:
            log.info(f"job {status['status']}", extra=fields(progress=status["progress"]))
            last = shown
        if status["status"] in ("done", "failed", "cancelled"):
            if status.get("error"):
                log.warning("job error", extra=fields(error=status["error"]))
            return str(status["status"])
        time.sleep(poll_s)
    raise Retryable(f"job {job_id} still running after {timeout_s:.0f} s")


def _download(client: Client, project: str, job_id: str, out: Path) -> int:
    import httpx

    files = client.get(f"/v1/projects/{project}/jobs/{job_id}/results").json()["files"]
    for rel, url in files.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", url, timeout=600.0) as response, dest.open("wb") as f:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                f.write(chunk)
    log.info(f"{len(files)} result files in {out}")
    return len(files)
