"""JobStore on SQLAlchemy 2: the same code on SQLite (embedded) and PostgreSQL (deployed).

The schema is owned by Alembic migrations (``adapters/migrations``); ``migrate(url)``
brings any database to the latest revision, and the store refuses to start on a
database that is not at it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bdisc.errors import ConfigError, NotFound, Retryable
from bdisc.ports.job_store import FINAL, ITEM_STATES, JOB_STATES, ItemRecord, JobRecord

MIGRATIONS = Path(__file__).parent / "migrations"
ORDER = {s: i for i, s in enumerate(ITEM_STATES)}
# The predicate of the partial index of unsettled items (migration 0004), written out:
# as bound parameters, PostgreSQL's generic plan of a prepared statement (psycopg
# prepares what it runs often) cannot prove it and reads all of a job's items instead.
UNSETTLED = sa.text("job_items.status NOT IN ('done', 'failed')")
WAITING = sa.text("job_items.status = 'pending'")  # migration 0005, as above
IN_FLIGHT = sa.text("job_items.status = 'running'")
ANALYZE_AFTER = 1000  # items added at once that make the table's statistics stale

metadata = sa.MetaData()
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
items = sa.Table(
    "job_items",
    metadata,
    sa.Column(
        "job_id", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("stage", sa.String(32), primary_key=True),
    sa.Column("grp", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("output", sa.Text, nullable=False, default=""),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(_alembic_config(url), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    return str(head)


def known_revisions() -> set[str]:
    """Every schema revision this release's migrations know."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    return {str(s.revision) for s in script.walk_revisions()}


def _now() -> datetime:
    return datetime.now(UTC)


def _outages_are_retryable(context: Any) -> None:
    """A database that is away (restarting, unreachable, connection dropped) is transient
    trouble: Retryable, so the bus retries the message instead of dead-lettering it.
    Errors the stores read themselves (a missing table, SQLite's lock) are left alone, and
    so is the pool's ping of a pooled connection: a connection that died with a restarted
    server is then replaced by a new one, unnoticed (as ``pool_pre_ping`` intends)."""
    if getattr(context, "is_pre_ping", False):
        return
    error = context.sqlalchemy_exception
    text = str(error)
    undefined_table = getattr(context.original_exception, "sqlstate", None) == "42P01"
    if undefined_table or "no such table" in text or "locked" in text:
        return
    if context.is_disconnect or isinstance(error, (OperationalError, sa.exc.InterfaceError)):
        raise Retryable(f"job database unavailable: {text.splitlines()[0]}") from error


@contextlib.contextmanager
def _by_index(conn: sa.Connection) -> Iterator[None]:
    """PostgreSQL answers "is any item of this deployment unsettled?" from the partial
    index of unsettled items, never by a sequential scan. The statistics of a big job
    are taken when it is planned (every item unsettled), so the planner expects the
    first unsettled item within a few rows of a sequential scan; as the job settles,
    that scan walks every settled item first (6 ms after 10,000, 47 ms after 58,000,
    per question), while the index finds it at once (0.02 ms)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # this transaction only
    yield  # (if it raised, the transaction is rolled back, and the setting with it)
    conn.execute(sa.text("SET LOCAL enable_seqscan = on"))


def engine_for(url: str) -> sa.Engine:
    """An engine whose outages surface as Retryable (one for the job, project and label
    stores of a process)."""
    engine = sa.create_engine(url, pool_pre_ping=True, future=True)
    sa.event.listen(engine, "handle_error", _outages_are_retryable)
    return engine


class SqlJobStore:
    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.engine = engine_for(url)
        self._unit = threading.local()  # the connection of this thread's open batch()
        if check_schema:
            current = self.revision()
            if current != head_revision():
                raise ConfigError(
                    f"database at revision {current or 'none'}, code expects "
                    f"{head_revision()}: run the migrations first"
                )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One connection and one transaction for every call inside (in this thread):
        committed at the end, rolled back whole if the block raises."""
        if getattr(self._unit, "conn", None) is not None:
            yield  # nested: part of the outer unit
            return
        with self.engine.begin() as conn:
            self._unit.conn = conn
            try:
                yield
            finally:
                self._unit.conn = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """The open unit of work's connection, or a transaction of its own."""
        conn = getattr(self._unit, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.engine.begin() as own:
            yield own

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """The open unit of work's connection (its writes are seen), or one of its own."""
        conn = getattr(self._unit, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as own:
            yield own

    def revision(self) -> str | None:
        """The schema revision the database is at (None: not migrated at all)."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        except OperationalError as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                return None
            raise Retryable(f"job database unreachable: {exc}") from exc
        except sa.exc.ProgrammingError:
            return None
        return str(row[0]) if row else None

    def create_job(
        self,
        job_id: str,
        project: str,
        kind: str,
        params: dict[str, Any],
        items_: Sequence[tuple[str, str]],
        stage: str,
    ) -> bool:
        now = _now()
        with self._write() as conn:
            if conn.execute(sa.select(jobs.c.id).where(jobs.c.id == job_id)).first():
                return False
            conn.execute(
                jobs.insert().values(
                    id=job_id,
                    project=project,
                    kind=kind,
                    params=params,
                    status="queued",
                    error="",
                    created_at=now,
                    updated_at=now,
                )
            )
            if items_:
                conn.execute(
                    items.insert(),
                    [
                        {
                            "job_id": job_id,
                            "key": k,
                            "stage": stage,
                            "grp": g,
                            "status": "pending",
                            "attempts": 0,
                            "output": "",
                            "error": "",
                            "updated_at": now,
                        }
                        for k, g in items_
                    ],
                )
        return True

    def _job(self, row: Any) -> JobRecord:
        return JobRecord(
            row.id,
            row.project,
            row.kind,
            dict(row.params),
            row.status,
            row.error,
            row.created_at,
            row.updated_at,
        )

    def job(self, job_id: str) -> JobRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}", job_id=job_id)
        return self._job(row)

    def jobs(self, project: str) -> list[JobRecord]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(jobs).where(jobs.c.project == project).order_by(jobs.c.created_at)
            ).all()
        return [self._job(r) for r in rows]

    def set_job_status(self, job_id: str, status: str, error: str = "") -> None:
        if status not in JOB_STATES:
            raise ConfigError(f"unknown job status {status!r}")
        with self._write() as conn:
            done = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(status=status, error=error, updated_at=_now())
            )
        if done.rowcount == 0:
            raise NotFound(f"no job {job_id}", job_id=job_id)

    def set_item(
        self,
        job_id: str,
        key: str,
        stage: str,
        status: str,
        *,
        group: str = "",
        output: str = "",
        error: str = "",
    ) -> bool:
        if status not in ITEM_STATES:
            raise ConfigError(f"unknown item status {status!r}")
        where = (items.c.job_id == job_id) & (items.c.key == key) & (items.c.stage == stage)
        # the states it may move from: not final, not later than the new one
        earlier = [s for s in ITEM_STATES if s not in FINAL and ORDER[s] <= ORDER[status]]
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "attempts": items.c.attempts + int(status == "running"),
            "updated_at": _now(),
        }
        if output:
            values["output"] = output
        with self._write() as conn:
            # one statement in the common case (the row is there and may move)
            moved = conn.execute(
                items.update().where(where & items.c.status.in_(earlier)).values(**values)
            )
            if moved.rowcount:
                return True
            if conn.execute(sa.select(items.c.status).where(where)).first() is not None:
                return False  # states only move forward; final states stay
            conn.execute(
                items.insert().values(
                    job_id=job_id,
                    key=key,
                    stage=stage,
                    grp=group,
                    status=status,
                    attempts=int(status == "running"),
                    output=output,
                    error=error,
                    updated_at=_now(),
                )
            )
        return True

    def settle_items(
        self, job_id: str, stage: str, outcomes: Sequence[tuple[str, str, str, str, str]]
    ) -> None:
        if any(status not in FINAL for _, _, status, _, _ in outcomes):
            raise ConfigError("settle_items takes final states only")
        if not outcomes:
            return
        keys = list(dict.fromkeys(key for key, *_ in outcomes))
        now = _now()
        where = (items.c.job_id == job_id) & (items.c.stage == stage)
        with self._write() as conn:
            known = {
                r.key
                for r in conn.execute(sa.select(items.c.key).where(where & items.c.key.in_(keys)))
            }
            first: dict[str, tuple[str, str, str, str, str]] = {}
            for outcome in outcomes:  # unknown items are recorded as set_item would
                if outcome[0] not in known:
                    first.setdefault(outcome[0], outcome)
            if first:
                conn.execute(
                    items.insert(),
                    [
                        {
                            "job_id": job_id,
                            "key": key,
                            "stage": stage,
                            "grp": group,
                            "status": status,
                            "attempts": 0,
                            "output": output,
                            "error": error,
                            "updated_at": now,
                        }
                        for key, group, status, output, error in first.values()
                    ],
                )
            rest = [o for o in outcomes if o[0] in known]
            if rest:  # one statement, executed for many (pipelined by psycopg)
                new_output: sa.BindParameter[str] = sa.bindparam("b_output", type_=sa.Text)
                conn.execute(
                    items.update()
                    .where(
                        where
                        & (items.c.key == sa.bindparam("b_key"))
                        & sa.and_(*(items.c.status != f for f in FINAL))  # final stay
                    )
                    .values(
                        status=sa.bindparam("b_status"),
                        error=sa.bindparam("b_error"),
                        output=sa.case((new_output == "", items.c.output), else_=new_output),
                        updated_at=now,
                    ),
                    [
                        {"b_key": k, "b_status": s, "b_output": o, "b_error": e}
                        for k, _, s, o, e in rest
                    ],
                )

    def unsettled_groups(self, job_id: str, stage: str, groups: Sequence[str]) -> set[str]:
        """One question, an EXISTS per group (the partial index of unsettled items finds
        the first one; a DISTINCT would read every unsettled item of a big job)."""
        if not groups:
            return set()
        asks = [
            sa.select(sa.literal(group, sa.String).label("grp")).where(
                sa.exists().where(
                    (items.c.job_id == job_id)
                    & (items.c.stage == stage)
                    & (items.c.grp == group)
                    & UNSETTLED
                )
            )
            for group in dict.fromkeys(groups)
        ]
        with self._read() as conn, _by_index(conn):
            return {str(r.grp) for r in conn.execute(sa.union_all(*asks))}

    def add_items(
        self, job_id: str, stage: str, items_: Sequence[tuple[str, str, str, str]]
    ) -> int:
        for _, _, status, _ in items_:
            if status not in ITEM_STATES:
                raise ConfigError(f"unknown item status {status!r}")
        now = _now()
        with self._write() as conn:
            known = {
                r.key
                for r in conn.execute(
                    sa.select(items.c.key).where(
                        (items.c.job_id == job_id) & (items.c.stage == stage)
                    )
                )
            }
            new = [
                {
                    "job_id": job_id,
                    "key": key,
                    "stage": stage,
                    "grp": group,
                    "status": status,
                    "attempts": 0,
                    "output": "",
                    "error": error,
                    "updated_at": now,
                }
                for key, group, status, error in items_
                if key not in known
            ]
            if new:
                conn.execute(items.insert(), new)
            if len(new) >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
                # a big plan: the planner's statistics now, not when autovacuum gets to
                # them (until then it reads a job's items for each item it updates)
                conn.execute(sa.text("ANALYZE job_items"))
        return len(new)

    def discard_items(self, job_id: str, stage: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._write() as conn:
            conn.execute(
                items.delete().where(
                    (items.c.job_id == job_id)
                    & (items.c.stage == stage)
                    & items.c.key.in_(list(keys))
                )
            )

    def reset_failed(self, job_id: str, stage: str) -> list[str]:
        where = (items.c.job_id == job_id) & (items.c.stage == stage) & (items.c.status == "failed")
        with self._write() as conn:
            keys = [r.key for r in conn.execute(sa.select(items.c.key).where(where))]
            conn.execute(
                items.update().where(where).values(status="pending", error="", updated_at=_now())
            )
        return keys

    def items(
        self,
        job_id: str,
        stage: str | None = None,
        group: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[ItemRecord]:
        query = sa.select(items).where(items.c.job_id == job_id)
        if stage is not None:
            query = query.where(items.c.stage == stage)
        if group is not None:
            query = query.where(items.c.grp == group)
        if status is not None:
            query = query.where(items.c.status == status)
        query = query.order_by(items.c.stage, items.c.key)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [self._record(r) for r in rows]

    def progress(self, job_id: str) -> dict[str, dict[str, int]]:
        query = (
            sa.select(items.c.stage, items.c.status, sa.func.count())
            .where(items.c.job_id == job_id)
            .group_by(items.c.stage, items.c.status)
        )
        result: dict[str, dict[str, int]] = defaultdict(dict)
        with self._read() as conn:
            for stage, status, count in conn.execute(query):
                result[stage][status] = int(count)
        return dict(result)

    def group_settled(self, job_id: str, stage: str, group: str) -> bool:
        """No item of the group is unsettled: one lookup in the partial index of
        unsettled items (migration 0004), not a count of the group's items."""
        unsettled = sa.exists().where(
            (items.c.job_id == job_id)
            & (items.c.stage == stage)
            & (items.c.grp == group)
            & UNSETTLED
        )
        with self._read() as conn, _by_index(conn):
            return not bool(conn.execute(sa.select(unsettled)).scalar_one())

    def _running_jobs(self, conn: sa.Connection, project: str) -> list[str]:
        """The project's running jobs, oldest first."""
        query = (
            sa.select(jobs.c.id)
            .where((jobs.c.project == project) & (jobs.c.status == "running"))
            .order_by(jobs.c.created_at, jobs.c.id)
        )
        return [str(r.id) for r in conn.execute(query)]

    @staticmethod
    def _record(r: Any) -> ItemRecord:
        return ItemRecord(r.job_id, r.key, r.grp, r.stage, r.status, r.attempts, r.output, r.error)

    def in_flight(self, project: str, stage: str) -> list[ItemRecord]:
        with self._read() as conn:
            running = self._running_jobs(conn, project)
            if not running:
                return []
            rows = conn.execute(
                sa.select(items)
                .where(items.c.job_id.in_(running) & (items.c.stage == stage) & IN_FLIGHT)
                .order_by(items.c.job_id, items.c.key)
            ).all()
        return [self._record(r) for r in rows]

    def waiting(self, project: str, stage: str, limit: int) -> list[ItemRecord]:
        """Job by job (oldest first), each a range of the partial index of waiting
        items: reads what it returns, not the job's settled items."""
        found: list[ItemRecord] = []
        with self._read() as conn:
            for job_id in self._running_jobs(conn, project):
                if len(found) >= limit:
                    break
                rows = conn.execute(
                    sa.select(items)
                    .where((items.c.job_id == job_id) & (items.c.stage == stage) & WAITING)
                    .order_by(items.c.key)
                    .limit(limit - len(found))
                ).all()
                found.extend(self._record(r) for r in rows)
        return found

    def start_items(self, job_id: str, stage: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._write() as conn:
            conn.execute(
                items.update()
                .where(
                    (items.c.job_id == job_id)
                    & (items.c.stage == stage)
                    & items.c.key.in_(list(keys))
                    & WAITING
                )
                .values(status="running", attempts=items.c.attempts + 1, updated_at=_now())
            )

    def backlog(self, stage: str) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(items.join(jobs, jobs.c.id == items.c.job_id))
            .where((jobs.c.status == "running") & (items.c.stage == stage) & UNSETTLED)
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())
