"""JobStore on SQLAlchemy 2: the same code on SQLite (embedded) and PostgreSQL (deployed).

The schema is owned by Alembic migrations (``adapters/migrations``); ``migrate(url)``
brings any database to the latest revision, and the store refuses to start on a
database that is not at it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bdisc.errors import ConfigError, NotFound, Retryable
from bdisc.ports.job_store import FINAL, ITEM_STATES, JOB_STATES, ItemRecord, JobRecord

MIGRATIONS = Path(__file__).parent / "migrations"
ORDER = {s: i for i, s in enumerate(ITEM_STATES)}

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


def _now() -> datetime:
    return datetime.now(UTC)


def _outages_are_retryable(context: Any) -> None:
    """A database that is away (restarting, unreachable, connection dropped) is transient
    trouble: Retryable, so the bus retries the message instead of dead-lettering it.
    Errors the stores read themselves (a missing table, SQLite's lock) are left alone."""
    error = context.sqlalchemy_exception
    text = str(error)
    undefined_table = getattr(context.original_exception, "sqlstate", None) == "42P01"
    if undefined_table or "no such table" in text or "locked" in text:
        return
    if context.is_disconnect or isinstance(error, (OperationalError, sa.exc.InterfaceError)):
        raise Retryable(f"job database unavailable: {text.splitlines()[0]}") from error


def engine_for(url: str) -> sa.Engine:
    """An engine whose outages surface as Retryable (one for the job, project and label
    stores of a process)."""
    engine = sa.create_engine(url, pool_pre_ping=True, future=True)
    sa.event.listen(engine, "handle_error", _outages_are_retryable)
    return engine


class SqlJobStore:
    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.engine = engine_for(url)
        if check_schema:
            current = self._revision()
            if current != head_revision():
                raise ConfigError(
                    f"database at revision {current or 'none'}, code expects "
                    f"{head_revision()}: run the migrations first"
                )

    def _revision(self) -> str | None:
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
        with self.engine.begin() as conn:
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
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}", job_id=job_id)
        return self._job(row)

    def jobs(self, project: str) -> list[JobRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(jobs).where(jobs.c.project == project).order_by(jobs.c.created_at)
            ).all()
        return [self._job(r) for r in rows]

    def set_job_status(self, job_id: str, status: str, error: str = "") -> None:
        if status not in JOB_STATES:
            raise ConfigError(f"unknown job status {status!r}")
        with self.engine.begin() as conn:
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
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(items).where(where).with_for_update()).first()
            if row is None:
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
            if row.status in FINAL or ORDER[status] < ORDER[row.status]:
                return False  # states only move forward; final states stay
            conn.execute(
                items.update()
                .where(where)
                .values(
                    status=status,
                    output=output or row.output,
                    error=error,
                    attempts=row.attempts + int(status == "running"),
                    updated_at=_now(),
                )
            )
        return True

    def add_items(
        self, job_id: str, stage: str, items_: Sequence[tuple[str, str, str, str]]
    ) -> int:
        for _, _, status, _ in items_:
            if status not in ITEM_STATES:
                raise ConfigError(f"unknown item status {status!r}")
        now = _now()
        with self.engine.begin() as conn:
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
        return len(new)

    def discard_items(self, job_id: str, stage: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self.engine.begin() as conn:
            conn.execute(
                items.delete().where(
                    (items.c.job_id == job_id)
                    & (items.c.stage == stage)
                    & items.c.key.in_(list(keys))
                )
            )

    def reset_failed(self, job_id: str, stage: str) -> list[str]:
        where = (items.c.job_id == job_id) & (items.c.stage == stage) & (items.c.status == "failed")
        with self.engine.begin() as conn:
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
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            ItemRecord(r.job_id, r.key, r.grp, r.stage, r.status, r.attempts, r.output, r.error)
            for r in rows
        ]

    def progress(self, job_id: str) -> dict[str, dict[str, int]]:
        query = (
            sa.select(items.c.stage, items.c.status, sa.func.count())
            .where(items.c.job_id == job_id)
            .group_by(items.c.stage, items.c.status)
        )
        result: dict[str, dict[str, int]] = defaultdict(dict)
        with self.engine.connect() as conn:
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
            & items.c.status.not_in(FINAL)
        )
        with self.engine.connect() as conn:
            return not bool(conn.execute(sa.select(unsettled)).scalar_one())
