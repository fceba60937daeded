"""Projects and their API keys, and each project's webhook: SQLite embedded, PostgreSQL
deployed (``adapters/sql_project_store.py``), one contract suite for both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Project:
    id: str
    webhook_url: str
    webhook_secret: str  # signs the webhook's deliveries (X-Bdisc-Signature)


class ProjectStore(Protocol):
    def create(self, project_id: str, webhook_url: str = "") -> tuple[Project, str]:
        """A new project and its API key (returned once, never stored in clear).
        ConfigError for an invalid id, IncompatibleArtifact if the project exists."""
        ...

    def rotate_key(self, project_id: str) -> str:
        """A new API key for the project (the old one stops working); NotFound if none."""
        ...

    def by_key(self, key: str) -> Project | None:
        """The project an API key belongs to, or None for an unknown key."""
        ...

    def set_webhook(self, project_id: str, url: str) -> Project: ...

    def webhook(self, project_id: str) -> tuple[str, str] | None:
        """(url, secret) of the project's webhook, or None when it has none."""
        ...
