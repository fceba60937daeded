"""Fixtures every test folder shares: test data paths, one BirdNET model per session,
and the real infrastructure (SeaweedFS S3, started here; the machine's RabbitMQ and
PostgreSQL, started if installed but stopped). Missing infrastructure fails the run
with instructions; nothing is mocked."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bdisc.adapters.s3_store import S3Store
from bdisc.model.birdnet import BirdNetV24
from bdisc.pipeline.recording_task import ModelFactory
from devstack.stack import port_open, seaweedfs_argv, wait_for

DATA = Path(__file__).parent / "data"
AUDIO = DATA / "audio"
S3_PORT = 8333
RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


@pytest.fixture(scope="session")
def model() -> BirdNetV24:
    return BirdNetV24(threads=2)


@pytest.fixture(scope="session")
def factory(model: BirdNetV24) -> ModelFactory:
    """In-process runs reuse the session's model instead of loading their own."""
    return lambda threads: model


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if port_open(S3_PORT):  # a developer's stack (make stack-up): use it, if it works
        _refuse_broken_s3(f"127.0.0.1:{S3_PORT}")
        yield f"127.0.0.1:{S3_PORT}"
        return
    try:
        argv = seaweedfs_argv(tmp_path_factory.mktemp("seaweed"))
    except SystemExit as exc:
        pytest.fail(str(exc))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for(S3_PORT, 60):
            pytest.fail("SeaweedFS did not open its S3 port within 60 s")
        time.sleep(1.0)  # the S3 gateway answers a moment after its port opens
        yield f"127.0.0.1:{S3_PORT}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def admin_store(endpoint: str, bucket: str) -> S3Store:
    """The bucket ``bucket`` (made if missing) as the S3 server's administrator, the
    development stack's account (``devstack.stack.DEFAULT_ENV``); the services' own
    accounts are ``devstack.stack.store_env``."""
    from devstack.stack import DEFAULT_ENV

    return S3Store(
        endpoint, DEFAULT_ENV["BDISC_S3_ACCESS_KEY"], DEFAULT_ENV["BDISC_S3_SECRET_KEY"], bucket
    )


def _refuse_broken_s3(endpoint: str) -> None:
    """An S3 server left running (a stack whose data folder is gone, say, or one started
    without the services' policies) fails the run at once with the reason, rather than
    every test that stores something."""
    from bdisc.errors import InternalError
    from devstack.stack import store_accounts

    try:
        store = admin_store(endpoint, "bdisc-probe")  # every run's probe, emptied again
        store.put_bytes("probe", b"ok")
        assert store.get_bytes("probe") == b"ok"
        store.delete("probe")
    except Exception as exc:
        pytest.fail(f"an S3 server answers on {endpoint} but does not work ({exc}): stop it")
    access, secret = store_accounts()["spectrogram"]  # which may only read recordings
    reader = S3Store(endpoint, access, secret, "bdisc-probe", provisioned=True)
    try:
        reader.put_bytes("probe", b"not allowed")
    except InternalError:
        return
    except Exception as exc:
        pytest.fail(f"the S3 server on {endpoint} does not know the services' accounts ({exc})")
    store.delete("probe")
    pytest.fail(f"the S3 server on {endpoint} does not enforce the services' policies: stop it")


@pytest.fixture(scope="session")
def rabbit_url() -> str:
    if not port_open(5672) and shutil.which("rabbitmq-server"):
        subprocess.run(["rabbitmq-server", "-detached"], check=False)
        wait_for(5672, 60)
    if not port_open(5672):
        pytest.fail("no RabbitMQ on 127.0.0.1:5672: apt-get install -y rabbitmq-server")
    return RABBIT_URL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    if not port_open(5432):
        pytest.fail("no PostgreSQL on 127.0.0.1:5432: apt-get install -y postgresql")
    name = f"bdisc_test_{uuid.uuid4().hex[:10]}"
    # pre-pinged: a test restarts the server (tests/e2e/test_stack_faults.py)
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of each kind a store runs on: SQLite (embedded) and the
    machine's PostgreSQL; the contract suites run once on each."""
    from bdisc.adapters.sql_job_store import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'bdisc.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate(url)
    return url


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (apt-get install -y chromium)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("no Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield chromium
        chromium.close()
