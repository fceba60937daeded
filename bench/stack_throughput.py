"""Windows/s of embedding through the stack (1 to N replicas) against the embedded CLI.

The same N copies of the soundscape (or, with ``--long-hours H``, one recording of H
hours, which the platform embeds in 10-minute parts) go through ``bdisc embed --workers
2`` and through the running services (recordings already in S3; each replica has loaded
its model before the clock starts; the time runs from job submission until every item
is embedded). Per replica count: windows/s and per-replica efficiency (the rate over N
times one replica's), and what each part of the platform cost per recording in CPU
seconds (from /proc: the embedding replicas, the orchestrator, ingestion, RabbitMQ,
PostgreSQL and SeaweedFS over the timed run), with the bytes read from and written to S3
per recording: the measurements behind the README's scaling model. Needs what ``make
stack`` needs: RabbitMQ and PostgreSQL (SeaweedFS is started here).

    python bench/stack_throughput.py [--copies 24] [--long-hours 2] [--replicas 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
import sqlalchemy as sa

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.s3_store import S3Store
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.keys import audio_prefix
from bdisc.app.messages import SubmitDiscovery
from bdisc.app.orchestrator import Orchestrator
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.params import AnalysisParams
from devstack.stack import DEFAULT_ENV, Stack

ROOT = Path(__file__).resolve().parents[1]
SOUNDSCAPE = ROOT / "tests" / "data" / "audio" / "soundscape.flac"
WINDOWS_PER_COPY = 40


def embedded(src: Path, out: Path) -> float:
    bdisc = str(Path(sys.executable).parent / "bdisc")
    start = time.perf_counter()
    subprocess.run(
        [
            bdisc,
            "--log-level",
            "warning",
            "embed",
            str(src),
            "--out",
            str(out),
            "--workers",
            "2",
            "--no-progress",
        ],
        check=True,
    )
    return time.perf_counter() - start


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds so far of each named group of processes."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone: its time is lost (connections live through the run)
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        out[name] = total
    return out


def infrastructure_pids() -> dict[str, list[int]]:
    """The broker's, the database's and S3's processes on this machine."""
    found: dict[str, list[int]] = {"rabbitmq": [], "postgresql": [], "s3": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        group = {"beam.smp": "rabbitmq", "postgres": "postgresql", "weed": "s3"}.get(command)
        if group:
            found[group].append(int(entry.name))
    return found


def through_stack(
    src: Path, home: Path, replicas: int, env: dict[str, str]
) -> tuple[float, dict[str, float]]:
    """Seconds from submission until every recording is embedded, and the CPU seconds
    each part of the platform spent meanwhile."""
    # A bucket of its own: embeddings are content-addressed, so a shared bucket would let
    # this run find the previous run's results and measure nothing.
    env = {**env, "BDISC_S3_BUCKET": f"bench-{uuid.uuid4().hex[:8]}"}
    stack = Stack(home, env)
    objects = S3Store(
        env["BDISC_S3_ENDPOINT"],
        env["BDISC_S3_ACCESS_KEY"],
        env["BDISC_S3_SECRET_KEY"],
        env["BDISC_S3_BUCKET"],
    )
    project = f"bench{replicas}"
    recordings = sorted(src.rglob("*.flac"))
    for f in recordings:
        objects.put_file(audio_prefix(project) + f.relative_to(src).as_posix(), f)
    bus = RabbitBus(env["BDISC_RABBITMQ_URL"])
    for stage in stages.PREFETCH:  # every stage's queue
        bus.purge(stage)
    jobs = SqlJobStore(env["BDISC_DATABASE_URL"])
    try:
        names = ["orchestrator", "ingestion"] + [f"embedding-{i + 1}" for i in range(replicas)]
        started = stack.start_services_named(names, metrics_base=19400)
        logs = [home / "logs" / f"embedding-{i + 1}.log" for i in range(replicas)]
        deadline = time.monotonic() + 120
        while not all(p.is_file() and "consuming" in p.read_text() for p in logs):
            if time.monotonic() > deadline:
                raise SystemExit("embedding replicas did not start")
            time.sleep(0.2)
        groups = {
            "embedding": [pid for name, pid in started.items() if name.startswith("embedding")],
            "orchestrator": [started["orchestrator"]],
            "ingestion": [started["ingestion"]],
        }
        cpu_before = cpu_seconds({**groups, **infrastructure_pids()})
        start = time.perf_counter()
        command = SubmitDiscovery(
            project=project,
            spec=DiscoverySpec.from_dict({"analysis": AnalysisParams().as_dict()}),
        )
        job = Orchestrator(jobs, bus, objects, labels=SqlLabelStore(jobs.engine)).submit_discovery(
            None, command
        )
        # the job is planned by ingestion first: wait for the plan, then for every item
        while not _embedded(jobs.progress(job)):
            if jobs.job(job).status == "failed":
                raise SystemExit(f"benchmark job failed: {jobs.job(job).error}")
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        cpu_after = cpu_seconds({**groups, **infrastructure_pids()})
        spent = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        return elapsed, spent
    finally:
        stack.down()
        bus.close()


def _embedded(progress: dict[str, dict[str, int]]) -> bool:
    embed = progress.get(stages.EMBED, {})
    planned = progress.get(stages.INGEST, {}).get("done", 0) > 0
    unsettled = embed.get("pending", 0) + embed.get("running", 0)  # waiting or sent
    return planned and bool(embed) and unsettled == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=24)
    parser.add_argument("--long-hours", type=float, help="one recording of this length instead")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    db = f"bdisc_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in" / "site"
        src.mkdir(parents=True)
        if args.long_hours:
            audio, rate = sf.read(SOUNDSCAPE, dtype="float32")
            samples = int(args.long_hours * 3600 * rate)
            sf.write(src / "long.flac", np.tile(audio, samples // len(audio) + 1)[:samples], rate)
            windows = int(args.long_hours * 3600 / 3)
        else:
            for i in range(args.copies):
                shutil.copyfile(SOUNDSCAPE, src / f"copy{i:03d}.flac")
            windows = args.copies * WINDOWS_PER_COPY
        env = {
            **DEFAULT_ENV,
            "BDISC_S3_BUCKET": f"bench-{uuid.uuid4().hex[:8]}",
            "BDISC_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        }
        infra = Stack(Path(tmp) / "infra", env)
        infra.ensure_infrastructure()  # S3 (started if needed), RabbitMQ, PostgreSQL, database
        migrate(env["BDISC_DATABASE_URL"])
        recordings = sorted(src.rglob("*.flac"))
        audio_bytes = sum(f.stat().st_size for f in recordings)
        try:
            base = embedded(src.parent, Path(tmp) / "embedded")
            runs = {
                n: through_stack(src.parent, Path(tmp) / f"s{n}", n, env) for n in args.replicas
            }
        finally:
            infra.down()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        written = sum(f.stat().st_size for f in (Path(tmp) / "embedded").rglob("*.parquet"))
    items = -(-windows // 200) if args.long_hours else len(recordings)  # 10-minute parts
    first = min(runs)
    one_rate = windows / runs[first][0] / first
    result: dict[str, object] = {
        "windows": windows,
        "work_items": items,
        "embedded_cli_windows_per_s": round(windows / base, 1),
        "s3_bytes_read_per_item": round(audio_bytes / items),
        "s3_bytes_written_per_item": round(written / items),
    }
    for n, (seconds, cpu) in runs.items():
        rate = windows / seconds
        result[f"stack_{n}"] = {
            "windows_per_s": round(rate, 1),
            "ratio_to_embedded": round(base / seconds, 3),
            "per_replica_efficiency": round(rate / n / one_rate, 3),
            "cpu_s_per_item": {k: round(v / items, 4) for k, v in sorted(cpu.items())},
        }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
