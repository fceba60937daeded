"""Load on the API: P projects, each with C clients, for D seconds against the real stack
(gateway, orchestrator, ingestion, one embedding replica, clustering...) on the machine's
RabbitMQ, PostgreSQL and SeaweedFS, over loopback only.

Each client loops over what a field team's tools do:
- upload a 3-s recording (POST audio);
- list the project's audio, read /v1/me, list its jobs;
- every 10th loop (``--submit-every``), submit a discovery job of its own uploads.

It prints requests/s, p50 and p99 latency per kind of request, the answers the rate
limit refused (429, expected past ``BDISC_RATE_LIMIT_PER_S`` per key) and the failures
(5xx, other errors, connection errors; the goal is none). After the load it waits for
every submitted job and prints how many ended ``done``.

    python bench/api_load.py [--projects 3] [--clients 4] [--seconds 120]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import soundfile as sf
import sqlalchemy as sa

from devstack.stack import DEFAULT_ENV, SPECTROGRAM_OFFSET, Stack, port_open, wait_for

ROOT = Path(__file__).resolve().parents[1]
SOUNDSCAPE = ROOT / "tests" / "data" / "audio" / "soundscape.flac"
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_block(size: int = 64) -> int:
    for _ in range(200):
        base = random.randrange(20000, 32000 - size)
        if not any(port_open(p) for p in range(base, base + size)):
            return base
    raise SystemExit("no free block of ports on 127.0.0.1")


def clip(seconds: float = 3.0) -> bytes:
    audio, rate = sf.read(SOUNDSCAPE, dtype="float32")
    start = random.randrange(0, len(audio) - int(seconds * rate))
    out = io.BytesIO()
    sf.write(out, audio[start : start + int(seconds * rate)], rate, format="WAV")
    return out.getvalue()


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.limited = 0
        self.failures: list[str] = []
        self.jobs: list[tuple[str, str]] = []  # (project, job)

    def record(self, kind: str, started: float, answer: httpx.Response | Exception) -> None:
        seconds = time.perf_counter() - started
        with self.lock:
            if isinstance(answer, Exception):
                self.failures.append(f"{kind}: {type(answer).__name__}: {answer}")
                return
            self.times[kind].append(seconds)
            if answer.status_code == 429:
                self.limited += 1
            elif answer.status_code >= 300:
                self.failures.append(f"{kind}: {answer.status_code} {answer.text[:200]}")


def client(
    api: str, project: str, key: str, until: float, tally: Tally, seed: int, every: int
) -> None:
    http = httpx.Client(base_url=api, headers={"X-API-Key": key}, timeout=60)
    rng, body, loop = random.Random(seed), clip(), 0
    base = f"/v1/projects/{project}"

    def call(kind: str, method: str, path: str, **options: object) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            answer = http.request(method, path, **options)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            tally.record(kind, started, exc)
            return None
        tally.record(kind, started, answer)
        return answer

    folder = f"c{seed}"
    while time.perf_counter() < until:
        loop += 1
        name = f"{folder}/{uuid.uuid4().hex[:8]}.wav"
        call("upload", "POST", f"{base}/audio", params={"path": name}, files={"file": body})
        call("list audio", "GET", f"{base}/audio", params={"prefix": folder})
        call("me", "GET", "/v1/me")
        call("list jobs", "GET", f"{base}/jobs")
        if loop % every == 0:
            submitted = call("submit", "POST", f"{base}/jobs", json={"prefix": f"{folder}/"})
            if submitted is not None and submitted.status_code == 202:
                with tally.lock:
                    tally.jobs.append((project, submitted.json()["job_id"]))
        time.sleep(rng.uniform(0.0, 0.05))
    http.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="per project")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--submit-every", type=int, default=10, help="loops per job submitted")
    args = parser.parse_args()
    base, db = free_block(), f"bdisc_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    env = {
        **DEFAULT_ENV,
        "BDISC_S3_BUCKET": f"bench-{uuid.uuid4().hex[:8]}",
        "BDISC_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        "BDISC_PORT": str(base),
        "BDISC_SPECTROGRAM_ADDR": f"127.0.0.1:{base + 32 + SPECTROGRAM_OFFSET}",
        "BDISC_LOG_LEVEL": "warning",
    }
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp) / "stack", env, grpc_base=base + 32)
        try:
            stack.ensure_infrastructure()
            stack.migrate()
            stack.start_services(embed_replicas=1, metrics_base=base + 1)
            api = f"http://127.0.0.1:{base}"
            if not wait_for(base, 90):
                raise SystemExit("the gateway did not start")
            keys = {}
            for i in range(args.projects):
                made = subprocess.run(
                    [sys.executable, "-m", "gateway", "create-project", f"load-{i}"],
                    env={**os.environ, **env},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                lines = made.stdout.splitlines()
                key = next(x for x in lines if x.startswith("api key")).split()[-1]
                keys[lines[0].split()[-1]] = key  # "project <id>", "api key <key>"
            until = time.perf_counter() + args.seconds
            threads = [
                threading.Thread(
                    target=client,
                    args=(api, project, key, until, tally, i * 100 + c, args.submit_every),
                )
                for i, (project, key) in enumerate(keys.items())
                for c in range(args.clients)
            ]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            waiting = time.perf_counter()
            ended = wait_for_jobs(api, keys, tally.jobs, 600)
            waited = time.perf_counter() - waiting
        finally:
            stack.down()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    requests = sum(len(v) for v in tally.times.values()) + len(tally.failures)
    report: dict[str, object] = {
        "projects": args.projects,
        "clients": args.projects * args.clients,
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "rate_limited_429": tally.limited,
        "failures": len(tally.failures),
        "first_failures": tally.failures[:5],
        "jobs_submitted": len(tally.jobs),
        "jobs_done": sum(1 for s in ended.values() if s == "done"),
        "jobs_not_done": dict(Counter(s for s in ended.values() if s != "done")),
        "jobs_wait_s": round(waited, 1),
        "latency_ms": {
            kind: {
                "n": len(times),
                "p50": round(statistics.median(times) * 1000, 1),
                "p99": round(percentile(times, 0.99) * 1000, 1),
            }
            for kind, times in sorted(tally.times.items())
        },
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


def wait_for_jobs(
    api: str, keys: dict[str, str], jobs: list[tuple[str, str]], seconds: float
) -> dict[str, str]:
    """Each job's status once all have ended (or the time is up)."""
    deadline, status = time.monotonic() + seconds, {}
    with httpx.Client(base_url=api, timeout=30) as http:
        while time.monotonic() < deadline:
            for project, job in jobs:
                if status.get(job) in ("done", "failed", "cancelled"):
                    continue
                headers = {"X-API-Key": keys[project]}
                answer = http.get(f"/v1/projects/{project}/jobs/{job}", headers=headers)
                if answer.status_code == 200:
                    status[job] = answer.json()["status"]
            if all(status.get(j) in ("done", "failed", "cancelled") for _, j in jobs):
                break
            time.sleep(2.0)
    return {job: status.get(job, "unknown") for _, job in jobs}


if __name__ == "__main__":
    main()
