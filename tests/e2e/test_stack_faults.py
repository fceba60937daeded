"""The deployed system as real processes (orchestrator, 2 embedding replicas, clustering)
on real SeaweedFS, RabbitMQ and PostgreSQL, under faults mid-job: an embedding replica and
the orchestrator killed with SIGKILL (the orchestrator restarted), the broker dropping
every connection, RabbitMQ restarted, PostgreSQL restarted. The job still completes, and
every recording is embedded exactly once into the object store."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.s3_store import S3Store
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.keys import audio_prefix, results_prefix
from bdisc.app.orchestrator import Orchestrator
from devstack.stack import Stack, port_open

from ..commands import discovery
from ..model.helpers import write_clip
from .stack_helpers import StackPorts, bus_users, own_vhost, stack_env

RECORDINGS = {"north": ["n1.wav", "n2.wav", "n3.flac"], "south": ["s1.wav", "s2.wav", "s3.wav"]}


def wait_until(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class JobInFlight:
    """A discovery job on a running stack, its first recording embedded."""

    stack: Stack
    ports: StackPorts
    objects: S3Store
    bus: RabbitBus
    jobs: SqlJobStore
    job: str
    vhost: str  # the stack's own RabbitMQ virtual host

    def wait_for_the_end(self) -> None:
        wait_until(
            lambda: self.jobs.job(self.job).status in ("done", "failed"), 300, "the job to end"
        )
        assert self.jobs.job(self.job).status == "done", self.jobs.job(self.job).error


@contextmanager
def job_in_flight(
    s3_endpoint: str,
    rabbit_url: str,
    postgres_url: str,
    tmp_path: Path,
    project: str,
    recordings: dict[str, Path],
    own_bus_users: bool = False,
) -> Iterator[JobInFlight]:
    """Upload ``recordings`` (path below the project's audio -> local file), start the
    stack (orchestrator, ingestion, 2 embedding replicas, clustering...) in a RabbitMQ
    virtual host of its own, submit a discovery job and wait for its first recording;
    the stack goes down afterwards. ``own_bus_users``: each service logs in as itself,
    checks its senders and finds the topology provisioned, as deployed."""
    with contextlib.ExitStack() as more:
        rabbit = more.enter_context(own_vhost(rabbit_url))
        users = more.enter_context(bus_users(rabbit)) if own_bus_users else {}
        ports = StackPorts.free()
        env = {**stack_env(s3_endpoint, rabbit, postgres_url, ports), "BDISC_LOG_LEVEL": "info"}
        stack = Stack(tmp_path / ".stack", env, grpc_base=ports.grpc_base, service_env=users)
        objects = S3Store(
            s3_endpoint,
            env["BDISC_S3_ACCESS_KEY"],
            env["BDISC_S3_SECRET_KEY"],
            env["BDISC_S3_BUCKET"],
        )
        # the test submits as the orchestrator would: with users, as the orchestrator's user
        own = users.get("orchestrator", {}).get("BDISC_RABBITMQ_URL")
        bus = RabbitBus(own, provisioned=True) if own else RabbitBus(rabbit)
        migrate(postgres_url)
        jobs = SqlJobStore(postgres_url)
        for rel, local in recordings.items():
            objects.put_file(f"{audio_prefix(project)}{rel}", local)
        try:
            stack.start_services(embed_replicas=2, metrics_base=ports.metrics_base)
            orchestrator = Orchestrator(jobs, bus, objects, labels=SqlLabelStore(jobs.engine))
            job = orchestrator.submit_discovery(
                None, discovery(project, cluster={"min_cluster_size": 3})
            )
            wait_until(
                lambda: jobs.progress(job).get("embed", {}).get("done", 0) >= 1,
                120,
                "the first recording",
            )
            vhost = unquote(rabbit.rsplit("/", 1)[1])
            yield JobInFlight(stack, ports, objects, bus, jobs, job, vhost)
        finally:
            stack.down()
            bus.close()


def clips(audio_dir: Path, folder: Path, count: int) -> dict[str, Path]:
    """``count`` clips of the soundscape, 45 s and 3 s longer each, as site/r<i>.wav."""
    return {
        f"site/r{i}.wav": write_clip(
            audio_dir / "soundscape.flac", folder / f"r{i}.wav", 45.0 + i * 3
        )
        for i in range(count)
    }


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_job_survives_killed_workers(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, audio_dir: Path, tmp_path: Path
) -> None:
    # The .wav clips are byte-identical copies in different places (the .flac is not):
    # each must still get its own, correctly named result.
    recordings = {
        f"{group}/{name}": write_clip(
            audio_dir / "soundscape.flac", tmp_path / "audio" / group / name, 60.0
        )
        for group, names in RECORDINGS.items()
        for name in names
    }
    project = "e2e"
    with job_in_flight(s3_endpoint, rabbit_url, postgres_url, tmp_path, project, recordings) as run:
        run.stack.stop("embedding-1", signal.SIGKILL)
        run.stack.stop("orchestrator", signal.SIGKILL)
        run.stack.start_services_named(
            ["orchestrator"], metrics_base=run.ports.restart_metrics_base
        )
        run.wait_for_the_end()
        embedded = run.jobs.items(run.job, stages.EMBED)
        assert len(embedded) == 6 and all(i.status == "done" for i in embedded)
        outputs = {i.output for i in embedded}
        assert len(outputs) == 6  # one object per recording, identical copies included
        stored = [k for k in run.objects.list("embeddings/") if k.endswith(".parquet")]
        assert sorted(stored) == sorted(outputs)  # nothing computed twice, nothing stray
        rows, named = 0, set()
        for key in stored:
            local = tmp_path / "check" / key
            run.objects.download(key, local)
            table = pq.read_table(local)
            rows += table.num_rows
            named |= set(table.column("recording").to_pylist())
        assert rows == 6 * 20  # every window exactly once
        assert named == {f"{g}/{n}" for g, names in RECORDINGS.items() for n in names}
        for group in RECORDINGS:
            keys = set(run.objects.list(results_prefix(project, run.job, group)))
            assert results_prefix(project, run.job, group) + "clusters.csv" in keys
    assert run.stack.running() == {}


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_job_survives_the_broker_dropping_every_connection(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, audio_dir: Path, tmp_path: Path
) -> None:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is needed to drop the broker's connections")
    recordings = clips(audio_dir, tmp_path, 4)
    with job_in_flight(s3_endpoint, rabbit_url, postgres_url, tmp_path, "drop", recordings) as run:
        subprocess.run(
            [rabbitmqctl, "close_all_connections", "-p", run.vhost, "bdisc e2e test"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        run.wait_for_the_end()
        assert all(i.status == "done" for i in run.jobs.items(run.job, stages.EMBED))
        reconnected = [
            n
            for n in ("embedding-1", "embedding-2", "orchestrator")
            if "reconnecting" in (tmp_path / ".stack" / "logs" / f"{n}.log").read_text()
        ]
        assert reconnected, "no service noticed the dropped connection"


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_job_survives_a_broker_restart(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, audio_dir: Path, tmp_path: Path
) -> None:
    """RabbitMQ itself stops for seconds mid-job and starts again (not only dropped
    connections): the quorum queues come back from disk, every service reconnects,
    deliveries in hand are redelivered, and the job completes with every recording
    embedded once and no event dead-lettered."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is needed to restart the broker")
    recordings = clips(audio_dir, tmp_path, 6)
    broker = [rabbitmqctl, "-q"]
    try:
        with job_in_flight(  # as deployed: a user per service, senders checked
            s3_endpoint, rabbit_url, postgres_url, tmp_path, "mqdown", recordings, True
        ) as run:
            subprocess.run([*broker, "stop_app"], check=True, timeout=120, capture_output=True)
            time.sleep(5.0)  # every connection is gone; the replicas' results wait
            subprocess.run([*broker, "start_app"], check=True, timeout=120, capture_output=True)
            wait_until(lambda: port_open(5672), 60, "RabbitMQ to listen")
            run.wait_for_the_end()
            embedded = run.jobs.items(run.job, stages.EMBED)
            assert len(embedded) == 6 and all(i.status == "done" for i in embedded)
            stored = [k for k in run.objects.list("embeddings/") if k.endswith(".parquet")]
            assert sorted(stored) == sorted(i.output for i in embedded)  # each once
            # the test's own connection died with the broker
            after = RabbitBus(run.bus.url, provisioned=True)
            assert after.dead_letters(stages.EVENTS) == []
            after.close()
            logs = (tmp_path / ".stack" / "logs").glob("*.log")
            assert not any("sender that may not send" in log.read_text() for log in logs)
            assert set(run.stack.running()) >= {"orchestrator", "embedding-1", "embedding-2"}
    finally:  # whatever happened, the broker runs for the tests after this one
        subprocess.run([*broker, "start_app"], check=False, timeout=120, capture_output=True)


def _postgres_cluster() -> tuple[str, str] | None:
    """(pg_ctlcluster, version) of this machine's PostgreSQL cluster, if it runs one."""
    ctl = shutil.which("pg_ctlcluster")
    versions = sorted(Path("/etc/postgresql").glob("*/main")) if ctl else []
    return (ctl, versions[-1].parent.name) if ctl and versions else None


@pytest.mark.model
@pytest.mark.integration
@pytest.mark.slow
def test_job_survives_a_database_restart(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, audio_dir: Path, tmp_path: Path
) -> None:
    """PostgreSQL stops for seconds mid-job and starts again. Events meanwhile are retried
    (not dead-lettered); the orchestrator, whose writer lock went with its session, stops
    and is started again as Kubernetes would; the job completes with every recording
    embedded once."""
    cluster = _postgres_cluster()
    if cluster is None:
        pytest.skip("pg_ctlcluster and a PostgreSQL cluster are needed to restart it")
    ctl, version = cluster
    postgres = [ctl, "--skip-systemctl-redirect", version, "main"]
    recordings = clips(audio_dir, tmp_path, 6)
    try:
        with job_in_flight(
            s3_endpoint, rabbit_url, postgres_url, tmp_path, "pgdown", recordings
        ) as run:
            subprocess.run([*postgres, "stop", "--", "-m", "fast"], check=True, timeout=60)
            time.sleep(5.0)  # the replicas go on embedding; their events wait in the queue
            subprocess.run([*postgres, "start"], check=True, timeout=60)
            wait_until(lambda: port_open(5432), 60, "PostgreSQL to listen")
            if "orchestrator" not in run.stack.running():  # its lock's session died with it
                run.stack.start_services_named(
                    ["orchestrator"], metrics_base=run.ports.restart_metrics_base
                )
            run.wait_for_the_end()
            embedded = run.jobs.items(run.job, stages.EMBED)
            assert len(embedded) == 6 and all(i.status == "done" for i in embedded)
            stored = [k for k in run.objects.list("embeddings/") if k.endswith(".parquet")]
            assert sorted(stored) == sorted(i.output for i in embedded)  # each once
            assert run.bus.dead_letters(stages.EVENTS) == []  # retried through the outage
    finally:
        subprocess.run([*postgres, "start"], check=False, timeout=60, capture_output=True)
