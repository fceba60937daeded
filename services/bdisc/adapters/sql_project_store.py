"""Projects and API keys. A key is shown once at creation; only its SHA-256 is stored
(keys are 256-bit random tokens, so a fast hash is enough and lookups stay O(1))."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa

from bdisc.adapters.sql_job_store import metadata
from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.ports.project_store import Project

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("webhook_url", sa.Text, nullable=False),
    sa.Column("webhook_secret", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SqlProjectStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, project_id: str, webhook_url: str = "") -> tuple[Project, str]:
        """A new project and its API key (returned once, never stored in clear)."""
        if not PROJECT_ID.match(project_id):
            raise ConfigError("project ids are 2-63 characters: a-z, 0-9 and '-'")
        key = "bd_" + secrets.token_urlsafe(32)
        project = Project(project_id, webhook_url, secrets.token_urlsafe(32))
        with self.engine.begin() as conn:
            if conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)).first():
                raise IncompatibleArtifact(f"project {project_id} exists")
            conn.execute(
                projects.insert().values(
                    id=project_id,
                    key_hash=hash_key(key),
                    webhook_url=webhook_url,
                    webhook_secret=project.webhook_secret,
                    created_at=datetime.now(UTC),
                )
            )
        return project, key

    def rotate_key(self, project_id: str) -> str:
        """A new API key for the project; the old one stops working at once."""
        key = "bd_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            changed = conn.execute(
                projects.update().where(projects.c.id == project_id).values(key_hash=hash_key(key))
            )
        if changed.rowcount != 1:
            raise NotFound(f"no project {project_id}")
        return key

    def by_key(self, key: str) -> Project | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(projects).where(projects.c.key_hash == hash_key(key))
            ).first()
        return Project(row.id, row.webhook_url, row.webhook_secret) if row else None

    def set_webhook(self, project_id: str, url: str) -> Project:
        with self.engine.begin() as conn:
            conn.execute(
                projects.update().where(projects.c.id == project_id).values(webhook_url=url)
            )
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
        if row is None:
            raise NotFound(f"no project {project_id}")
        return Project(row.id, row.webhook_url, row.webhook_secret)

    def webhook(self, project_id: str) -> tuple[str, str] | None:
        """(url, secret) of the project's webhook, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(projects.c.webhook_url, projects.c.webhook_secret).where(
                    projects.c.id == project_id
                )
            ).first()
        return (row.webhook_url, row.webhook_secret) if row and row.webhook_url else None
