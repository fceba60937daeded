"""The real stack for end-to-end tests: every service started from the working tree on
the session's RabbitMQ, SeaweedFS and PostgreSQL, with a project and its API key."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app import stages
from devstack.stack import DEFAULT_ENV, SPECTROGRAM_OFFSET, Stack, port_open, wait_for

BDISC = str(Path(sys.executable).parent / "bdisc")
BLOCK = 64  # ports a stack takes: gateway, metrics (base + 1 ..), gRPC (base + 32 ..)


@dataclass(frozen=True)
class StackPorts:
    """Ports no other process on the machine listens on: a stack left running by hand
    (make stack-up) or by another run must not answer in this one's place."""

    gateway: int
    metrics_base: int
    grpc_base: int

    @classmethod
    def free(cls) -> StackPorts:
        for _ in range(200):
            base = random.randrange(20000, 32000 - BLOCK)  # below the ephemeral ports
            if not any(port_open(p) for p in range(base, base + BLOCK)):
                return cls(base, base + 1, base + 32)
        raise AssertionError("no free block of ports on 127.0.0.1")

    @property
    def restart_metrics_base(self) -> int:  # a service started again takes a new port
        return self.metrics_base + 20


@contextmanager
def own_vhost(rabbit_url: str) -> Iterator[str]:
    """A RabbitMQ virtual host of the stack's own, deleted afterwards: services of another
    stack on the same broker (a forgotten one, another run's) cannot take its messages.
    Where rabbitmqctl cannot make one (not the broker's machine, not root), the broker's
    default host is used, and the stack refuses to start beside another stack's consumers."""
    ctl = shutil.which("rabbitmqctl")
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    if ctl is None or rabbitmqctl(ctl, "add_vhost", name).returncode != 0:
        _refuse_shared_stage_queues(rabbit_url)
        yield rabbit_url
        return
    try:
        done = rabbitmqctl(ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        assert done.returncode == 0, done.stderr
        yield f"{rabbit_url.rsplit('/', 1)[0]}/{quote(name, safe='')}"
    finally:
        rabbitmqctl(ctl, "delete_vhost", name)


def rabbitmqctl(ctl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ctl, *args], capture_output=True, text=True, timeout=120)


def _refuse_shared_stage_queues(rabbit_url: str) -> None:
    bus = RabbitBus(rabbit_url)
    try:
        served = {stage: bus.consumers(stage) for stage in stages.PREFETCH}
        busy = {stage: n for stage, n in served.items() if n}
        assert not busy, f"another stack's services consume these queues: {busy}"
        for stage in stages.PREFETCH:  # every stage's queue
            bus.purge(stage)
    finally:
        bus.close()


def stack_env(
    s3_endpoint: str, rabbit_url: str, postgres_url: str, ports: StackPorts
) -> dict[str, str]:
    """The environment of a stack on the session's infrastructure, in a bucket of its own."""
    return {
        **DEFAULT_ENV,
        "BDISC_RABBITMQ_URL": rabbit_url,
        "BDISC_S3_ENDPOINT": s3_endpoint,
        "BDISC_S3_BUCKET": f"e2e-{uuid.uuid4().hex[:10]}",
        "BDISC_DATABASE_URL": postgres_url,
        "BDISC_PORT": str(ports.gateway),
        "BDISC_SPECTROGRAM_ADDR": f"127.0.0.1:{ports.grpc_base + SPECTROGRAM_OFFSET}",
    }


@dataclass(frozen=True)
class RunningStack:
    stack: Stack
    api: str  # the gateway's URL
    key: str  # the project's API key
    ports: StackPorts
    env: dict[str, str]  # the services' environment

    def create_project(self) -> str:
        """Another project (the tests share one database: a name of its own); its key."""
        created = subprocess.run(
            [sys.executable, "-m", "gateway", "create-project", f"field-{uuid.uuid4().hex[:8]}"],
            env={**os.environ, **self.env, **self.stack.service_env.get("gateway", {})},
            capture_output=True,
            text=True,
            check=True,
        )
        return next(
            line.split()[-1] for line in created.stdout.splitlines() if line.startswith("api key")
        )


@contextmanager
def bus_users(vhost_url: str) -> Iterator[dict[str, dict[str, str]]]:
    """A RabbitMQ user per service in the stack's virtual host, with the deployment's
    rights and provisioned topology (``bdisc.service.bus_definitions``), and every
    service checking its senders: each service's settings. The users go afterwards."""
    from bdisc.service.bus_definitions import SERVICES, BusPasswords, definitions

    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None, "bus users are made with rabbitmqctl, on the broker's machine"
    tag = uuid.uuid4().hex[:8]
    prefix = f"e2e{tag}-"
    vhost = unquote(vhost_url.rsplit("/", 1)[1])
    secret = {service: f"pw-{service}-{tag}" for service in SERVICES}
    loaded = json.dumps(definitions(BusPasswords(**secret), vhost, prefix))
    done = subprocess.run(
        [ctl, "import_definitions"], input=loaded, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    base = vhost_url.split("@", 1)[1]  # host:port/vhost
    try:
        yield {
            service: {
                "BDISC_RABBITMQ_URL": f"amqp://{prefix}{service}:{secret[service]}@{base}",
                "BDISC_BUS_SENDERS": "checked",
                "BDISC_BUS_TOPOLOGY": "provisioned",
                "BDISC_BUS_USER_PREFIX": prefix,
            }
            for service in SERVICES
        }
    finally:
        for service in SERVICES:
            rabbitmqctl(ctl, "delete_user", f"{prefix}{service}")


@contextmanager
def running_stack(
    s3_endpoint: str,
    rabbit_url: str,
    postgres_url: str,
    folder: Path,
    embed_replicas: int = 2,
    own_bus_users: bool = False,
) -> Iterator[RunningStack]:
    """``own_bus_users``: each service logs in as itself with the deployment's rights
    and checks its senders (``bus_users``), as compose and Kubernetes run them."""
    ports = StackPorts.free()
    with own_vhost(rabbit_url) as vhost_url, contextlib.ExitStack() as more:
        env = stack_env(s3_endpoint, vhost_url, postgres_url, ports)
        users = more.enter_context(bus_users(vhost_url)) if own_bus_users else {}
        stack = Stack(folder, env, grpc_base=ports.grpc_base, service_env=users)
        try:
            stack.provision_store()  # as the store's set-up job: the bucket
            stack.migrate()  # as the migrate Job: the services wait for the schema
            stack.start_services(embed_replicas=embed_replicas, metrics_base=ports.metrics_base)
            assert wait_for(ports.gateway, 60), (folder / "logs/gateway.log").read_text()[-2000:]
            running = RunningStack(stack, f"http://127.0.0.1:{ports.gateway}", "", ports, env)
            yield replace(running, key=running.create_project())
        finally:
            stack.down()
