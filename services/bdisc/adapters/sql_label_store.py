"""LabelStore on SQLAlchemy 2 (SQLite embedded, PostgreSQL deployed; schema by Alembic).

A write is one transaction: the sheet's revision row is read (locked on PostgreSQL),
compared with the writer's, bumped, and every change is applied and recorded in the
history with the label it replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from bdisc.adapters.sql_job_store import metadata
from bdisc.errors import ConfigError, Conflict, NotFound
from bdisc.ports.label_store import SOURCES, Change, LabelRecord, Target

MAX_LABEL = 200

sheets = sa.Table(
    "label_sheets",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("folder", sa.String(256), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
)
current = sa.Table(
    "labels",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("folder", sa.String(256), primary_key=True),
    sa.Column("target", sa.String(1200), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
changes_table = sa.Table(
    "label_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("folder", sa.String(256), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("target", sa.String(1200), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("previous", sa.Text, nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("undone_by", sa.Integer, nullable=False),
)


class SqlLabelStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def labels(self, job_id: str, folder: str | None = None) -> list[LabelRecord]:
        query = sa.select(current).where(current.c.job_id == job_id)
        if folder is not None:
            query = query.where(current.c.folder == folder)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(current.c.folder, current.c.target)).all()
        return [_record(r, r.label) for r in rows]

    def revision(self, job_id: str, folder: str) -> int:
        with self.engine.connect() as conn:
            return _revision(conn, job_id, folder, lock=False)

    def write(
        self,
        job_id: str,
        folder: str,
        changes: Sequence[Change],
        author: str,
        source: str,
        expected: int | None,
    ) -> int:
        if source not in SOURCES:
            raise ConfigError(f"label source must be one of {', '.join(SOURCES)}")
        wanted = {c.target.key: _checked(c, folder) for c in changes}  # the last one wins
        with _races_are_conflicts(folder), self.engine.begin() as conn:
            return self._apply(conn, job_id, folder, wanted, author, source, expected)

    def _apply(
        self,
        conn: sa.Connection,
        job_id: str,
        folder: str,
        wanted: dict[str, Change],
        author: str,
        source: str,
        expected: int | None,
        undoing: Sequence[int] = (),
    ) -> int:
        now_revision = _revision(conn, job_id, folder, lock=True)
        if expected is not None and expected != now_revision:
            raise Conflict(
                f"labels of {folder or 'the job'} are at revision {now_revision}, "
                f"not {expected}: someone saved first; reload and apply your change again",
                revision=now_revision,
            )
        old = {
            r.target: r.label
            for r in conn.execute(
                sa.select(current.c.target, current.c.label).where(
                    (current.c.job_id == job_id)
                    & (current.c.folder == folder)
                    & current.c.target.in_(list(wanted))
                )
            )
        }
        effective = {k: c for k, c in wanted.items() if c.label != old.get(k, "")}
        if not effective:
            return now_revision
        revision, at = now_revision + 1, datetime.now(UTC)
        if now_revision == 0:  # two first writes: the second insert fails (IntegrityError)
            conn.execute(sheets.insert().values(job_id=job_id, folder=folder, revision=revision))
        else:  # compare and swap: a writer that read the same revision and came second fails
            swapped = conn.execute(
                sheets.update()
                .where(
                    (sheets.c.job_id == job_id)
                    & (sheets.c.folder == folder)
                    & (sheets.c.revision == now_revision)
                )
                .values(revision=revision)
            )
            if swapped.rowcount != 1:
                raise Conflict(f"labels of {folder or 'the job'} changed meanwhile")
        who = {"author": author[:128], "source": source, "at": at}
        for key, change in effective.items():
            conn.execute(
                changes_table.insert().values(
                    job_id=job_id,
                    folder=folder,
                    revision=revision,
                    target=key,
                    label=change.label,
                    previous=old.get(key, ""),
                    undone_by=0,
                    **who,
                )
            )
            where = (
                (current.c.job_id == job_id)
                & (current.c.folder == folder)
                & (current.c.target == key)
            )
            conn.execute(current.delete().where(where))
            if change.label:
                conn.execute(
                    current.insert().values(
                        job_id=job_id,
                        folder=folder,
                        target=key,
                        label=change.label,
                        revision=revision,
                        **who,
                    )
                )
        if undoing:
            conn.execute(
                changes_table.update()
                .where(changes_table.c.id.in_(list(undoing)))
                .values(undone_by=revision)
            )
        return revision

    def history(self, job_id: str, folder: str) -> list[LabelRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(changes_table)
                .where((changes_table.c.job_id == job_id) & (changes_table.c.folder == folder))
                .order_by(changes_table.c.revision, changes_table.c.id)
            ).all()
        return [_record(r, r.label, r.previous) for r in rows]

    def undo(self, job_id: str, folder: str, author: str, expected: int | None) -> int:
        with _races_are_conflicts(folder), self.engine.begin() as conn:
            table = changes_table
            last = conn.execute(
                sa.select(sa.func.max(table.c.revision)).where(
                    (table.c.job_id == job_id)
                    & (table.c.folder == folder)
                    & (table.c.source != "undo")
                    & (table.c.undone_by == 0)
                )
            ).scalar_one()
            if last is None:
                raise NotFound(f"nothing to undo in the labels of {folder or 'the job'}")
            rows = conn.execute(
                sa.select(table.c.id, table.c.target, table.c.previous).where(
                    (table.c.job_id == job_id)
                    & (table.c.folder == folder)
                    & (table.c.revision == last)
                )
            ).all()
            back = {r.target: Change(Target.from_key(folder, r.target), r.previous) for r in rows}
            return self._apply(
                conn, job_id, folder, back, author, "undo", expected, [r.id for r in rows]
            )


@contextlib.contextmanager
def _races_are_conflicts(folder: str) -> Iterator[None]:
    """A writer that lost a race (PostgreSQL: a unique key; SQLite: the write lock taken
    by another transaction after this one read) saved nothing: a Conflict, like a
    stale revision."""
    try:
        yield
    except (IntegrityError, OperationalError) as exc:
        if isinstance(exc, OperationalError) and "locked" not in str(exc):
            raise
        raise Conflict(f"labels of {folder or 'the job'} changed meanwhile") from exc


def _revision(conn: sa.Connection, job_id: str, folder: str, *, lock: bool) -> int:
    query = sa.select(sheets.c.revision).where(
        (sheets.c.job_id == job_id) & (sheets.c.folder == folder)
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).scalar_one_or_none()
    return int(found) if found is not None else 0


def _checked(change: Change, folder: str) -> Change:
    if change.target.folder != folder:
        raise ConfigError(
            f"a label of {change.target.key} in {change.target.folder!r} written to the "
            f"sheet of {folder!r}"
        )
    label = " ".join(change.label.split())  # no stray whitespace or line breaks
    if len(label) > MAX_LABEL:
        raise ConfigError(f"labels are at most {MAX_LABEL} characters")
    return Change(change.target, label)


def _record(row: Any, label: str, previous: str = "") -> LabelRecord:
    return LabelRecord(
        row.job_id,
        Target.from_key(row.folder, row.target),
        label,
        row.author,
        row.source,
        row.revision,
        row.at,
        previous,
    )
