"""The window index over stored embeddings files: incremental updates, rebuilds, refusing
mixed provenance, and its recall against exact search (synthetic clustered vectors
written as real embeddings files)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.search.exact import exact_search, recall_at_k
from bdisc.search.manifest import IndexSettings
from bdisc.search.matches import nearest
from bdisc.search.window_index import (
    INDEX_FOLDER,
    MANIFEST_FILE,
    open_index,
)

from .search_helpers import PROVENANCE, clustered, write_stored


def test_the_nearest_window_of_a_stored_vector_is_itself(tmp_path: Path) -> None:
    data = clustered(600)
    write_stored(tmp_path, "site/a.wav", data[:300])
    write_stored(tmp_path, "site/b.wav", data[300:])
    index, update = open_index(tmp_path)
    assert (update.files_added, update.windows, update.rebuilt) == (2, 600, True)
    ids, dist = index.search(data[[5, 450]], 3)
    assert ids[:, 0].tolist() == [5, 450]
    assert dist[:, 0].max() < 1e-3 and (np.diff(dist, axis=1) >= 0).all()
    assert index.entry(450).recording == "site/b.wav"
    assert index.table.start_s[450] == pytest.approx(150 * 3.0)


def test_new_files_are_added_changed_ones_rebuild(tmp_path: Path) -> None:
    data = clustered(300, seed=1)
    write_stored(tmp_path, "a.wav", data[:100])
    open_index(tmp_path)
    write_stored(tmp_path, "b.wav", data[100:200])
    index, update = open_index(tmp_path)
    assert (update.rebuilt, update.files_added, update.windows_added) == (False, 1, 100)
    assert len(index) == 200 and index.search(data[150], 1)[0][0, 0] == 150

    _, again = open_index(tmp_path)
    assert (again.rebuilt, again.files_added) == (False, 0)  # nothing new: nothing done

    path = write_stored(tmp_path, "a.wav", data[200:250])  # the same file, other windows
    os.utime(path, ns=(1, 1))
    index, update = open_index(tmp_path)
    assert update.rebuilt and "changed or removed" in update.reason
    assert len(index) == 150
    assert index.entry(int(index.search(data[220], 1)[0][0, 0])).recording == "a.wav"

    path.unlink()
    index, update = open_index(tmp_path)
    assert update.rebuilt and len(index) == 100


def test_a_manifest_never_pairs_with_another_saves_files(tmp_path: Path) -> None:
    """Two writers of one index folder (two jobs of a project publishing it): each save
    names its own files, so a manifest left from the other save cannot be read with the
    vectors and table of this one; it reads as missing files and rebuilds."""
    data = clustered(200, seed=3)
    write_stored(tmp_path, "a.wav", data[:100])
    open_index(tmp_path)
    folder = tmp_path / INDEX_FOLDER
    first = (folder / MANIFEST_FILE).read_text()
    write_stored(tmp_path, "b.wav", data[100:])
    open_index(tmp_path)
    assert len(list(folder.glob("windows-*"))) == 2  # the older generation's files are gone
    (folder / MANIFEST_FILE).write_text(first)  # the first writer's manifest lands last
    index, update = open_index(tmp_path)
    assert update.rebuilt and "unreadable" in update.reason
    assert len(index) == 200 and index.search(data[150], 1)[0][0, 0] == 150


def test_a_damaged_index_is_rebuilt_from_the_embeddings(tmp_path: Path) -> None:
    data = clustered(200, seed=2)
    write_stored(tmp_path, "a.wav", data)
    open_index(tmp_path)
    (vectors,) = (tmp_path / INDEX_FOLDER).glob("windows-*.usearch")
    vectors.write_bytes(b"not an index")
    index, update = open_index(tmp_path)
    assert update.rebuilt and "unreadable" in update.reason
    assert index.search(data[7], 1)[0][0, 0] == 7
    (tmp_path / INDEX_FOLDER / MANIFEST_FILE).write_text("{")
    _, update = open_index(tmp_path)
    assert update.rebuilt and "manifest" in update.reason
    _, update = open_index(tmp_path, IndexSettings(dtype="f32"))
    assert update.rebuilt and update.reason == "other index settings"
    _, update = open_index(tmp_path, IndexSettings(dtype="f32", expansion_search=300))
    assert not update.rebuilt  # a search setting: the stored graph still holds
    with pytest.raises(ConfigError):
        IndexSettings(dtype="i8")  # too coarse for BirdNET's embeddings (see manifest)


def test_embeddings_of_another_provenance_are_refused(tmp_path: Path) -> None:
    data = clustered(100, seed=3)
    write_stored(tmp_path, "a.wav", data[:50])
    open_index(tmp_path)
    write_stored(tmp_path, "b.wav", data[50:], {**PROVENANCE, "overlap_s": 1.5})
    with pytest.raises(IncompatibleArtifact) as err:
        open_index(tmp_path)
    assert err.value.context["differs"] == ["overlap_s"]
    (tmp_path / INDEX_FOLDER).rename(tmp_path / "old_index")  # a fresh build refuses too
    with pytest.raises(IncompatibleArtifact):
        open_index(tmp_path)


def test_no_embeddings_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        open_index(tmp_path)


def test_exact_search_is_brute_force() -> None:
    data = clustered(500, dim=32, seed=4)
    ids, dist = exact_search(data, data[:20], 10)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    full = 1 - unit[:20] @ unit.T
    assert (ids == np.argsort(full, axis=1, kind="stable")[:, :10]).mean() > 0.99
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :10], atol=1e-5)
    assert recall_at_k(ids, ids) == 1.0
    assert recall_at_k(ids[:, ::-1] * 0 - 1, ids) == 0.0


@pytest.mark.parametrize("dtype", ["f16", "f32"])
def test_recall_at_100_on_clustered_vectors(tmp_path: Path, dtype: str) -> None:
    data = clustered(12_000, seed=5)
    base, queries = data[:11_800], data[11_800:]
    for i in range(0, len(base), 1000):
        write_stored(tmp_path, f"r{i // 1000:02d}.wav", base[i : i + 1000])
    # exact_pairs=0: the graph's own recall, never the exhaustive search
    index, _ = open_index(tmp_path, IndexSettings(dtype=dtype, exact_pairs=0))
    found, _ = index.search(queries, 100)
    truth, _ = exact_search(base, queries, 100)
    assert recall_at_k(found, truth) >= 0.95


def test_a_search_within_the_exact_budget_finds_every_true_neighbour(tmp_path: Path) -> None:
    data = clustered(12_000, seed=5)
    base, queries = data[:11_800], data[11_800:]
    for i in range(0, len(base), 1000):
        write_stored(tmp_path, f"r{i // 1000:02d}.wav", base[i : i + 1000])
    truth, truth_d = exact_search(base, queries, 100)
    graph, _ = open_index(tmp_path, IndexSettings(dtype="f32", exact_pairs=0))
    approximate, _ = graph.search(queries, 100)
    index, _ = open_index(tmp_path, IndexSettings(dtype="f32"))  # 200 x 11,800 pairs
    found, distances = index.search(queries, 100)
    # every rank at its true distance: the ids differ only where two windows are within
    # float rounding of each other at the 100th place
    np.testing.assert_allclose(distances, truth_d, atol=1e-5)
    assert recall_at_k(found, truth) > 0.9999
    assert recall_at_k(found, truth) >= recall_at_k(approximate, truth)
    # over the budget, the graph answers again: its own answers, the same stored graph
    small = IndexSettings(dtype="f32", exact_pairs=len(base) * len(queries) - 1)
    over, _ = open_index(tmp_path, small)
    np.testing.assert_array_equal(over.search(queries, 100)[0], approximate)


@pytest.mark.parametrize("first", ["a", "b"])
def test_windows_at_the_same_distance_rank_by_recording_whatever_the_index_order(
    tmp_path: Path, first: str
) -> None:
    data = clustered(40, seed=6)
    second = "b" if first == "a" else "a"
    write_stored(tmp_path, f"site/{first}.wav", data)
    open_index(tmp_path)
    write_stored(tmp_path, f"site/{second}.wav", data)  # a copy, indexed after: higher ids
    index, update = open_index(tmp_path)
    assert not update.rebuilt and index.entry(0).recording == f"site/{first}.wav"
    found = nearest(index, data[3], top=3)
    assert [(m.recording, m.start_s) for m in found] == [
        ("site/a.wav", 9.0),
        ("site/b.wav", 9.0),
        ("site/a.wav", 75.0),  # at the same distance as b's window at 75 s
    ]
    assert found[0].distance == found[1].distance and [m.rank for m in found] == [1, 2, 3]
    # the last window kept is chosen by name too: b's copy is left out, not a's
    assert [m.recording for m in nearest(index, data[3], top=1)] == ["site/a.wav"]


def test_many_windows_at_the_cut_off_distance_still_rank_by_name(tmp_path: Path) -> None:
    """Copies of one window (silence, a recording stored twice) beyond the candidates
    asked for: the ones kept are still the first by recording and start."""
    same = np.repeat(clustered(1, seed=7), 30, axis=0)
    write_stored(tmp_path, "site/a.wav", same)
    open_index(tmp_path)
    write_stored(tmp_path, "site/b.wav", same)  # indexed after a: higher ids
    index, _ = open_index(tmp_path)
    found = nearest(index, same[0], top=5)
    assert [(m.recording, m.start_s) for m in found] == [("site/a.wav", 3.0 * i) for i in range(5)]
