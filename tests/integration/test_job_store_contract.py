"""One contract, two databases: SQLite (embedded) and PostgreSQL (the machine's server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bdisc.adapters.sql_job_store import SqlJobStore, downgrade, head_revision, migrate
from bdisc.errors import ConfigError, NotFound, Retryable
from bdisc.ports.job_store import JobStore

from ..conftest import PG_ADMIN_URL


@pytest.fixture
def store(database: str) -> Iterator[JobStore]:
    yield SqlJobStore(database)


def new_job(store: JobStore, items: int = 4) -> str:
    job = f"job-{uuid.uuid4().hex[:8]}"
    keys = [(f"siteA/r{i}.wav", "siteA") for i in range(items - 1)] + [("siteB/x.wav", "siteB")]
    assert store.create_job(job, "proj1", "discover", {"overlap": 1.5}, keys, "embed")
    return job


def test_jobs_are_created_once_and_read_back(store: JobStore) -> None:
    job = new_job(store)
    assert not store.create_job(job, "proj1", "discover", {}, [], "embed")  # idempotent
    record = store.job(job)
    assert (record.project, record.kind, record.params, record.status) == (
        "proj1",
        "discover",
        {"overlap": 1.5},
        "queued",
    )
    assert job in [j.id for j in store.jobs("proj1")]
    assert store.jobs(f"another-{uuid.uuid4().hex[:6]}") == []
    store.set_job_status(job, "running")
    assert store.job(job).status == "running"
    with pytest.raises(NotFound):
        store.job("nope")
    with pytest.raises(ConfigError):
        store.set_job_status(job, "exploded")


def test_items_move_forward_only(store: JobStore) -> None:
    job = new_job(store)
    key = "siteA/r0.wav"
    assert store.set_item(job, key, "embed", "running")
    assert store.set_item(job, key, "embed", "running")  # a redelivery: second attempt
    assert store.set_item(job, key, "embed", "done", output="emb/abc.parquet")
    assert not store.set_item(job, key, "embed", "running")  # late redelivery: refused
    assert not store.set_item(job, key, "embed", "failed", error="late")
    item = next(i for i in store.items(job, "embed") if i.key == key)
    assert (item.status, item.attempts, item.output, item.group) == (
        "done",
        2,
        "emb/abc.parquet",
        "siteA",
    )


def test_fan_in_per_group_and_progress(store: JobStore) -> None:
    job = new_job(store)
    assert not store.group_settled(job, "embed", "siteA")
    store.set_item(job, "siteA/r0.wav", "embed", "done")
    store.set_item(job, "siteA/r1.wav", "embed", "failed", error="CorruptAudio: bad header")
    assert not store.group_settled(job, "embed", "siteA")
    store.set_item(job, "siteA/r2.wav", "embed", "done")
    assert store.group_settled(job, "embed", "siteA")
    assert not store.group_settled(job, "embed", "siteB")
    assert store.progress(job) == {"embed": {"done": 2, "failed": 1, "pending": 1}}
    # A new stage's items appear as they are set.
    store.set_item(job, "siteA", "cluster", "running", group="siteA")
    assert store.progress(job)["cluster"] == {"running": 1}
    # "Retry failed files": failed items go back to pending.
    assert store.reset_failed(job, "embed") == ["siteA/r1.wav"]
    assert not store.group_settled(job, "embed", "siteA")
    failed = [i for i in store.items(job, "embed", "siteA") if i.status == "failed"]
    assert failed == []
    # Items by status, at most so many (the API lists errors of huge jobs this way).
    store.set_item(job, "siteA/r1.wav", "embed", "failed", error="TooShort")
    store.set_item(job, "siteB/x.wav", "embed", "failed", error="CorruptAudio")
    by_status = store.items(job, "embed", status="failed")
    assert [i.key for i in by_status] == ["siteA/r1.wav", "siteB/x.wav"]
    assert [i.key for i in store.items(job, "embed", status="failed", limit=1)] == ["siteA/r1.wav"]


def test_plans_add_items_once_and_retries_discard_them(store: JobStore) -> None:
    job = new_job(store, items=2)
    plan = [
        ("siteC/a.wav", "siteC", "pending", ""),
        ("siteC/b.wav", "siteC", "failed", "CorruptAudio: bad header"),
    ]
    assert store.add_items(job, "ingest-plan", plan) == 2
    assert store.add_items(job, "ingest-plan", plan) == 0  # a redelivered plan adds nothing
    added = {i.key: i for i in store.items(job, "ingest-plan")}
    assert (added["siteC/b.wav"].status, added["siteC/b.wav"].error) == (
        "failed",
        "CorruptAudio: bad header",
    )
    assert added["siteC/a.wav"].group == "siteC"
    with pytest.raises(ConfigError):
        store.add_items(job, "ingest-plan", [("x.wav", "x", "exploded", "")])
    # Clustering again after a retry: the deployment's cluster item is forgotten ...
    store.set_item(job, "siteA", "cluster", "done", group="siteA", output="results/siteA/")
    store.set_item(job, "siteB", "cluster", "done", group="siteB", output="results/siteB/")
    store.discard_items(job, "cluster", ["siteA"])
    assert [i.key for i in store.items(job, "cluster")] == ["siteB"]
    # ... and can be asked for again, from pending.
    assert store.set_item(job, "siteA", "cluster", "pending", group="siteA")
    assert store.progress(job)["cluster"] == {"pending": 1, "done": 1}
    store.discard_items(job, "cluster", [])  # nothing to forget: nothing changes
    assert len(store.items(job, "cluster")) == 2


def test_a_unit_of_work_commits_once_at_its_end(store: JobStore, database: str) -> None:
    """The orchestrator's batch: every call inside one transaction, its own writes seen
    inside, nothing seen by another connection before the commit."""
    other = SqlJobStore(database)
    job = f"job-{uuid.uuid4().hex[:8]}"
    with store.batch():
        assert store.create_job(job, "proj1", "discover", {}, [("a.wav", "siteA")], "embed")
        assert store.set_item(job, "a.wav", "embed", "done", output="emb/a.parquet")
        with store.batch():  # nested: part of the same unit
            store.set_job_status(job, "running")
        assert store.job(job).status == "running"
        assert store.group_settled(job, "embed", "siteA")
        assert store.progress(job) == {"embed": {"done": 1}}
        with pytest.raises(NotFound):
            other.job(job)  # not committed yet
    assert other.job(job).status == "running"
    assert other.items(job, "embed")[0].output == "emb/a.parquet"


def test_a_unit_of_work_that_fails_is_rolled_back_whole(store: JobStore) -> None:
    job = new_job(store)
    with pytest.raises(RuntimeError), store.batch():
        store.set_item(job, "siteA/r0.wav", "embed", "done", output="emb/r0.parquet")
        store.add_items(job, "cluster", [("siteA", "siteA", "pending", "")])
        store.set_job_status(job, "failed", error="half done")
        raise RuntimeError("the orchestrator died half way")
    assert store.job(job).status == "queued"
    assert store.progress(job) == {"embed": {"pending": 4}}
    # the store works as before after it: a unit of its own per call again
    assert store.set_item(job, "siteA/r0.wav", "embed", "done")
    assert store.progress(job) == {"embed": {"done": 1, "pending": 3}}


def test_many_outcomes_settle_at_once_and_forward_only(store: JobStore) -> None:
    """The orchestrator's batch of "embedded" events: settle_items is set_item of many."""
    job = new_job(store)
    store.set_item(job, "siteA/r2.wav", "embed", "failed", error="TooShort")
    store.settle_items(
        job,
        "embed",
        [
            ("siteA/r0.wav", "siteA", "done", "emb/r0.parquet", ""),
            ("siteA/r1.wav", "siteA", "failed", "", "CorruptAudio: bad header"),
            ("siteA/r2.wav", "siteA", "done", "emb/late.parquet", ""),  # final: stays
            ("siteA/r0.wav", "siteA", "failed", "", "late"),  # redelivered in the batch
            ("siteC/new.wav", "siteC", "done", "emb/new.parquet", ""),  # not planned: added
        ],
    )
    got = {i.key: (i.status, i.output, i.error, i.group) for i in store.items(job, "embed")}
    assert got == {
        "siteA/r0.wav": ("done", "emb/r0.parquet", "", "siteA"),
        "siteA/r1.wav": ("failed", "", "CorruptAudio: bad header", "siteA"),
        "siteA/r2.wav": ("failed", "", "TooShort", "siteA"),
        "siteB/x.wav": ("pending", "", "", "siteB"),
        "siteC/new.wav": ("done", "emb/new.parquet", "", "siteC"),
    }
    assert store.unsettled_groups(job, "embed", ["siteA", "siteB", "siteC", "siteZ"]) == {"siteB"}
    assert store.unsettled_groups(job, "embed", []) == set()
    store.settle_items(job, "embed", [])
    with pytest.raises(ConfigError):
        store.settle_items(job, "embed", [("siteB/x.wav", "siteB", "running", "", "")])


def test_schema_is_owned_by_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    with pytest.raises(ConfigError, match="migrations"):
        SqlJobStore(url)
    migrate(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == head_revision()
    assert {"jobs", "job_items"} <= set(sa.inspect(engine).get_table_names())
    downgrade(url)  # and back
    assert "jobs" not in sa.inspect(sa.create_engine(url)).get_table_names()


def test_a_database_outage_is_retryable_not_a_failure(postgres_url: str) -> None:
    """Handled while the database is away, an event is retried by the bus (Retryable),
    not dead-lettered as if it were poison."""
    with pytest.raises(Retryable):
        SqlJobStore("postgresql+psycopg://postgres@127.0.0.1:1/none")  # nothing listens
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bdisc_outage_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    store = SqlJobStore(url)
    job = new_job(store)
    with admin.connect() as conn:  # the database goes away under the running store
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
    with pytest.raises(Retryable):
        store.job(job)
    with pytest.raises(Retryable):
        store.set_item(job, "siteA/r0.wav", "embed", "done")


def test_dispatch_finds_a_projects_waiting_and_sent_items(store: JobStore) -> None:
    """Waiting items come oldest job first, by key; only running jobs count; sending
    moves pending -> running (an attempt) and never touches a settled item."""
    project = f"proj-{uuid.uuid4().hex[:6]}"
    first, second, stopped = (f"job-{uuid.uuid4().hex[:8]}" for _ in range(3))
    for job, keys in ((first, ["b", "a", "c"]), (second, ["z", "y"]), (stopped, ["q"])):
        assert store.create_job(job, project, "discover", {}, [(k, "g") for k in keys], "embed")
        store.set_job_status(job, "cancelled" if job == stopped else "running")
    assert [(i.job_id, i.key) for i in store.waiting(project, "embed", 4)] == [
        (first, "a"),
        (first, "b"),
        (first, "c"),
        (second, "y"),
    ]
    assert store.in_flight(project, "embed") == []
    store.start_items(first, "embed", ["a", "b"])
    store.set_item(first, "a", "embed", "done", output="emb/a")
    store.start_items(first, "embed", ["a"])  # settled: stays done
    in_flight = store.in_flight(project, "embed")
    assert [(i.key, i.status, i.attempts) for i in in_flight] == [("b", "running", 1)]
    assert [i.key for i in store.waiting(project, "embed", 10)] == ["c", "y", "z"]
    assert store.waiting(f"{project}-other", "embed", 10) == []
    before = store.backlog("embed")
    store.set_job_status(second, "failed")  # a job that stopped is no one's backlog
    assert store.backlog("embed") == before - 2
    assert [i.key for i in store.waiting(project, "embed", 10)] == ["c"]


@pytest.mark.integration
def test_a_pooled_connection_the_server_closed_is_replaced_unnoticed(postgres_url: str) -> None:
    """After PostgreSQL restarts, the pool's ping finds each dead connection and opens a
    new one: the store's next call works (it raised Retryable once per dead connection)."""
    migrate(postgres_url)
    store = SqlJobStore(postgres_url)
    job = new_job(store)
    with store.engine.connect() as conn:  # the pooled connection, and its server process
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    admin.dispose()
    assert store.job(job).id == job
    store.engine.dispose()
