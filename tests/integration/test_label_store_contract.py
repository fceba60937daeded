"""One contract, two databases: labels as data on SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.errors import ConfigError, Conflict, NotFound
from bdisc.ports.label_store import Change, LabelStore, Target


@pytest.fixture
def store(database: str) -> Iterator[LabelStore]:
    yield SqlLabelStore(SqlJobStore(database).engine)


def new_job() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


def current(store: LabelStore, job: str, folder: str | None = None) -> dict[str, str]:
    return {r.target.key: r.label for r in store.labels(job, folder)}


def test_writes_name_the_revision_they_read(store: LabelStore) -> None:
    job = new_job()
    assert store.revision(job, "north") == 0
    first = [
        Change(Target.cluster("north", 3), "chickadee"),
        Change(Target.cluster("north", 5), "x"),
    ]
    assert store.write(job, "north", first, "ana", "cluster", expected=0) == 1
    assert current(store, job, "north") == {"cluster:3": "chickadee", "cluster:5": "x"}
    # A second reviewer who read revision 0 saves late: refused, with the current revision.
    with pytest.raises(Conflict) as stale:
        store.write(job, "north", [Change(Target.cluster("north", 3), "tit")], "bo", "cluster", 0)
    assert stale.value.context["revision"] == 1
    # Relabel and remove in one revision; other sheets are independent.
    change = [Change(Target.cluster("north", 3), "Poecile"), Change(Target.cluster("north", 5), "")]
    assert store.write(job, "north", change, "bo", "cluster", expected=1) == 2
    assert (
        store.write(job, "south", [Change(Target.cluster("south", 1), "wren")], "bo", "cluster", 0)
        == 1
    )
    assert current(store, job, "north") == {"cluster:3": "Poecile"}
    assert current(store, job) == {"cluster:3": "Poecile", "cluster:1": "wren"}
    # Writing what is already there changes nothing, not even the revision.
    same = [Change(Target.cluster("north", 3), "Poecile")]
    assert store.write(job, "north", same, "ana", "cluster", expected=2) == 2
    assert current(store, new_job()) == {}


def test_history_keeps_every_change_and_undo_reverts_the_last(store: LabelStore) -> None:
    job = new_job()
    a, b = Target.cluster("north", 1), Target.window("north", "north/r1.wav", 12.0, 15.0)
    store.write(job, "north", [Change(a, "wren")], "ana", "cluster", 0)
    store.write(job, "north", [Change(a, "Troglodytes"), Change(b, "noise")], "bo", "window", 1)
    history = store.history(job, "north")
    assert [(h.revision, h.target.key, h.previous, h.label, h.author) for h in history] == [
        (1, "cluster:1", "", "wren", "ana"),
        (2, "cluster:1", "wren", "Troglodytes", "bo"),
        (2, "window:north/r1.wav:12.000:15.000", "", "noise", "bo"),
    ]
    assert store.undo(job, "north", "bo", expected=2) == 3
    assert current(store, job, "north") == {"cluster:1": "wren"}
    with pytest.raises(Conflict):  # an undo names the revision it read, too
        store.undo(job, "north", "bo", expected=2)
    assert store.undo(job, "north", "bo", expected=None) == 4  # and the one before
    assert current(store, job, "north") == {}
    with pytest.raises(NotFound):
        store.undo(job, "north", "bo", expected=None)
    assert [h.source for h in store.history(job, "north")] == ["cluster"] + ["window"] * 2 + [
        "undo"
    ] * 3


def test_targets_of_every_kind_round_trip(store: LabelStore) -> None:
    job = new_job()
    targets = [
        Target.cluster("north", -1),
        Target.window("north", "north/deep/r 1.wav", 0.0, 3.0),
    ]
    store.write(
        job, "north", [Change(t, f"label {i}") for i, t in enumerate(targets)], "a", "import", 0
    )
    store.write(
        job,
        "",
        [Change(Target.sound_type(7), "  drumming\n grouse ")],
        "a",
        "suggested-accepted",
        0,
    )
    found = {r.target: r for r in store.labels(job)}
    assert set(found) == {*targets, Target.sound_type(7)}
    assert found[Target.sound_type(7)].label == "drumming grouse"  # whitespace folded
    assert found[targets[1]].source == "import"


def test_bad_writes_are_refused(store: LabelStore) -> None:
    job = new_job()
    with pytest.raises(ConfigError):
        store.write(job, "north", [Change(Target.cluster("south", 1), "x")], "a", "cluster", 0)
    with pytest.raises(ConfigError):
        store.write(
            job, "north", [Change(Target.cluster("north", 1), "x" * 201)], "a", "cluster", 0
        )
    with pytest.raises(ConfigError):
        store.write(job, "north", [Change(Target.cluster("north", 1), "x")], "a", "magic", 0)
    with pytest.raises(ConfigError):
        Target.window("north", "r.wav", 3.0, 3.0)
    assert store.revision(job, "north") == 0


def test_concurrent_writers_of_one_revision_one_wins(store: LabelStore) -> None:
    job = new_job()
    store.write(job, "north", [Change(Target.cluster("north", 0), "a")], "x", "cluster", 0)
    outcomes: list[str] = []

    def save(name: str) -> None:
        try:
            store.write(
                job, "north", [Change(Target.cluster("north", 0), name)], name, "cluster", 1
            )
            outcomes.append("saved")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["saved"]
    assert store.revision(job, "north") == 2
