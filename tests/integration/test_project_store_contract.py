"""One contract, two databases: projects, API keys and webhooks on SQLite (embedded) and
on the machine's PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.ports.project_store import ProjectStore


@pytest.fixture
def store(database: str) -> Iterator[ProjectStore]:
    yield SqlProjectStore(SqlJobStore(database).engine)


def new_id() -> str:
    return f"proj-{uuid.uuid4().hex[:8]}"


def test_a_key_opens_its_project_only(store: ProjectStore) -> None:
    first, key = store.create(new_id())
    second, other_key = store.create(new_id(), "https://example.org/hook")
    assert key.startswith("bd_") and key != other_key
    assert store.by_key(key) == first
    assert store.by_key(other_key) == second
    assert store.by_key("bd_not-a-key") is None
    assert store.by_key(key[:-1]) is None


def test_a_rotated_key_replaces_the_old_one(store: ProjectStore) -> None:
    project, old = store.create(new_id())
    new = store.rotate_key(project.id)
    assert new != old and store.by_key(new) == project
    assert store.by_key(old) is None
    with pytest.raises(NotFound):
        store.rotate_key("no-such-project")


def test_ids_are_checked_and_unique(store: ProjectStore) -> None:
    project_id = new_id()
    store.create(project_id)
    with pytest.raises(IncompatibleArtifact):
        store.create(project_id)
    for bad in ("", "A", "Upper-case", "x" * 64, "under_score", "-lead", "a/b"):
        with pytest.raises(ConfigError):
            store.create(bad)


def test_webhooks_are_set_and_signed_with_the_projects_secret(store: ProjectStore) -> None:
    project, key = store.create(new_id())
    assert store.webhook(project.id) is None  # none yet
    updated = store.set_webhook(project.id, "https://example.org/hook")
    assert updated.webhook_url == "https://example.org/hook"
    assert store.webhook(project.id) == ("https://example.org/hook", project.webhook_secret)
    assert store.by_key(key) == updated
    store.set_webhook(project.id, "")
    assert store.webhook(project.id) is None  # removed
    with pytest.raises(NotFound):
        store.set_webhook("no-such-project", "https://example.org")
    other, _ = store.create(new_id())
    assert other.webhook_secret != project.webhook_secret
