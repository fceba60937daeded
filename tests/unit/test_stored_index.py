"""The window index kept beside a discovery job's stored results: published data files
first and the manifest last, fetched by what the manifest names, so two jobs of a
project publishing at once never leave a reader with one index's manifest and
another's vectors (on the object store the embedded runs use)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bdisc.adapters.local_store import LocalStore
from bdisc.app.messages import StoredResults
from bdisc.app.stored_results import ResultsReader
from bdisc.search.window_index import MANIFEST_FILE, index_folder, open_index

from .search_helpers import clustered, write_stored


class Recorded(LocalStore):
    """The real local store, noting the order of writes and deletes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def put_file(self, key: str, path: Path, content_type: str = "") -> None:
        self.writes.append(f"put {key.rsplit('/', 1)[-1]}")
        super().put_file(key, path, content_type)

    def delete(self, key: str) -> None:
        self.writes.append(f"delete {key.rsplit('/', 1)[-1]}")
        super().delete(key)


def reader(objects: LocalStore) -> ResultsReader:
    return ResultsReader(
        objects, "p1", StoredResults(discovery_job="d1", groups=("site",), recordings=())
    )


def test_the_kept_index_is_the_latest_publication_whole(tmp_path: Path) -> None:
    objects = Recorded(tmp_path / "objects")
    data = clustered(200, seed=4)
    a, b = tmp_path / "a", tmp_path / "b"
    write_stored(a, "site/r1.wav", data[:100])
    write_stored(b, "site/r1.wav", data[:100])
    write_stored(b, "site/r2.wav", data[100:])
    open_index(a)
    open_index(b)
    reader(objects).keep_index(a)
    objects.writes.clear()
    reader(objects).keep_index(b)  # the later publication wins, whole
    order = [w.split()[0] + (" manifest" if MANIFEST_FILE in w else "") for w in objects.writes]
    assert order == ["put", "put", "put manifest", "delete", "delete"], objects.writes
    prefix = reader(objects).prefix + "index/"
    kept = sorted(k[len(prefix) :] for k in objects.list(prefix))
    assert len(kept) == 3 and MANIFEST_FILE in kept  # a's files are gone

    fresh = tmp_path / "fresh"
    reader(objects).fetch_index(fresh)
    assert sorted(p.name for p in index_folder(fresh).iterdir()) == kept
    shutil.copytree(b / "embeddings", fresh / "embeddings")  # with their times
    index, update = open_index(fresh)
    assert not update.rebuilt and len(index) == 200


def test_a_manifest_whose_files_were_replaced_is_not_fetched_with_others(
    tmp_path: Path,
) -> None:
    objects = LocalStore(tmp_path / "objects")
    data = clustered(100, seed=5)
    a = tmp_path / "a"
    write_stored(a, "site/r1.wav", data)
    open_index(a)
    reader(objects).keep_index(a)
    prefix = reader(objects).prefix + "index/"
    first = objects.get_bytes(prefix + MANIFEST_FILE)
    for key in objects.list(prefix):
        if not key.endswith(MANIFEST_FILE):
            objects.delete(key)  # another job's publication replaced them
    objects.put_bytes(prefix + MANIFEST_FILE, first)
    fresh = tmp_path / "fresh"
    reader(objects).fetch_index(fresh)  # no error: the job goes on and rebuilds
    write_stored(fresh, "site/r1.wav", data)
    index, update = open_index(fresh)
    assert update.rebuilt and len(index) == 100
