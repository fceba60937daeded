"""Windows/s of embedding through the stack (1 and 2 replicas) against the embedded CLI.

The same N copies of the soundscape (or, with ``--long-hours H``, one recording of H
hours, which the platform embeds in 10-minute parts) go through ``bdisc embed --workers
2`` and through the running services (recordings already in S3; each replica has loaded
its model before the clock starts; the time runs from job submission until every item
is embedded). Needs what ``make stack`` needs: RabbitMQ and PostgreSQL (SeaweedFS is
started here).

    python bench/stack_throughput.py [--copies 24] [--long-hours 2]
"""

from __future__ import annotations

import argparse
import json
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


def through_stack(src: Path, home: Path, replicas: int, env: dict[str, str]) -> float:
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
        stack.start_services_named(names, metrics_base=19400)
        logs = [home / "logs" / f"embedding-{i + 1}.log" for i in range(replicas)]
        deadline = time.monotonic() + 120
        while not all(p.is_file() and "consuming" in p.read_text() for p in logs):
            if time.monotonic() > deadline:
                raise SystemExit("embedding replicas did not start")
            time.sleep(0.2)
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
        return time.perf_counter() - start
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
        try:
            base = embedded(src.parent, Path(tmp) / "embedded")
            one = through_stack(src.parent, Path(tmp) / "s1", 1, env)
            two = through_stack(src.parent, Path(tmp) / "s2", 2, env)
        finally:
            infra.down()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    result = {
        "windows": windows,
        "embedded_cli_windows_per_s": round(windows / base, 1),
        "stack_1_replica_windows_per_s": round(windows / one, 1),
        "stack_2_replicas_windows_per_s": round(windows / two, 1),
        "ratio_stack2_to_embedded": round(base / two, 3),
        "scaling_2_over_1_replica": round(one / two, 3),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
