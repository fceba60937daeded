"""An approximate nearest-neighbour index (usearch HNSW, cosine) over every window a
results folder stores in ``embeddings/``, kept up to date incrementally.

Beside the embeddings, ``index/`` holds ``windows-<generation>.usearch`` (the vectors),
``windows-<generation>.parquet`` (id -> recording and times) and ``manifest.json`` (which
files are in and which generation goes with it, see ``manifest``).
Opening the index adds the files that are new; a file that changed or disappeared, other
index settings, or an index that is missing, torn or unreadable make it rebuild from the
embeddings (they are the data; the index is only a cache). Files made with another window
provenance (model, window, overlap, band-pass) than the index's are refused.
"""

from __future__ import annotations

import bisect
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.fsutil import atomic_write_text, commit, temp_path
from bdisc.logs import fields
from bdisc.search.manifest import FileEntry, IndexSettings, Manifest
from bdisc.search.stored_windows import (
    EMBEDDINGS_FOLDER,
    StoredWindows,
    embedding_files,
    read_windows,
)
from bdisc.search.window_table import WindowTable

log = logging.getLogger(__name__)

INDEX_FOLDER = "index"
MANIFEST_FILE = "manifest.json"  # names the vectors and table files it goes with
CANDIDATES_PER_RESULT = 5  # HNSW search breadth per neighbour asked for


def usearch_index(dim: int, settings: IndexSettings) -> Any:
    try:
        from usearch.index import Index
    except ImportError as exc:  # pragma: no cover - a deployment without the extra
        raise ConfigError("search needs usearch: pip install 'bdisc[discovery]'") from exc
    return Index(
        ndim=dim,
        metric="cos",
        dtype=settings.dtype,
        connectivity=settings.connectivity,
        expansion_add=settings.expansion_add,
        expansion_search=settings.expansion_search,
    )


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (cosine is then a dot product; i8 quantises them well)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(np.divide(v, norms, out=np.zeros_like(v), where=norms > 0), np.float32)


@dataclass(frozen=True)
class IndexUpdate:
    """What opening the index did."""

    files_added: int
    windows_added: int
    windows: int
    rebuilt: bool
    reason: str  # why it was rebuilt ("" when it was not)
    unreadable: tuple[str, ...]  # embeddings files left out (tried again next time)
    seconds: float


class WindowIndex:
    """Search over stored windows: ids are rows of ``table``."""

    def __init__(
        self, index: Any, manifest: Manifest, table: WindowTable, embeddings_folder: Path
    ) -> None:
        self._index, self.manifest, self.table = index, manifest, table
        self.embeddings_folder = embeddings_folder
        self._starts = [f.first_id for f in manifest.files]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.manifest.provenance

    def __len__(self) -> int:
        return len(self.table)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest windows of each query row: ids (int64, -1 where fewer were
        found) and cosine distances (float32, inf there), nearest first. Exhaustive
        while the work is within ``exact_pairs`` (see ``IndexSettings``), else HNSW."""
        q = unit_rows(np.atleast_2d(queries))
        n = q.shape[0]
        ids = np.full((n, k), -1, dtype=np.int64)
        dist = np.full((n, k), np.inf, dtype=np.float32)
        if len(self) == 0 or k < 1:
            return ids, dist
        if q.shape[1] != self.manifest.dim:
            raise IncompatibleArtifact(
                f"queries have {q.shape[1]} dimensions, the index {self.manifest.dim}"
            )
        # HNSW's candidate list grows with k (bench/search_scale.py, 1M windows, k 100:
        # recall 0.85 at 128 candidates, 0.974 at 512): never fewer than 5 per result.
        wanted = min(k, len(self))
        self._index.expansion_search = max(
            self.manifest.settings.expansion_search, CANDIDATES_PER_RESULT * wanted
        )
        exact = n * len(self) <= self.manifest.settings.exact_pairs
        found = self._index.search(q, wanted, exact=exact)
        keys = np.atleast_2d(np.asarray(found.keys)).astype(np.int64)
        distances = np.atleast_2d(np.asarray(found.distances, dtype=np.float32))
        # One query row comes back as usearch's Matches (no counts), several as BatchMatches.
        counts = np.atleast_1d(
            np.asarray(found.counts) if hasattr(found, "counts") else len(found.keys)
        )
        for i in range(n):
            c = int(counts[i])
            ids[i, :c], dist[i, :c] = keys[i, :c], distances[i, :c]
        return ids, dist

    def entry(self, window_id: int) -> FileEntry:
        """The file (recording) a window id belongs to."""
        i = bisect.bisect_right(self._starts, window_id) - 1
        entry = self.manifest.files[i]
        if not 0 <= window_id - entry.first_id < entry.count:
            raise IndexError(window_id)
        return entry


def index_folder(results: Path) -> Path:
    return results / INDEX_FOLDER


def open_index(
    results: Path, settings: IndexSettings | None = None
) -> tuple[WindowIndex, IndexUpdate]:
    """The index of ``results/embeddings``, brought up to date (see the module's docstring)."""
    began = time.perf_counter()
    settings = settings or IndexSettings()
    folder = results / EMBEDDINGS_FOLDER
    files = embedding_files(folder) if folder.is_dir() else []
    if not files:
        raise NotFound(
            f"no stored embeddings in {folder}: run bdisc embed or bdisc discover with "
            f"--out {results} first",
            path=str(folder),
        )
    current = {f.relative_to(folder).as_posix(): f for f in files}
    loaded, reason = _load(index_folder(results), settings)
    if loaded is not None:
        stale = [
            e.path
            for e in loaded[1].files
            if e.path not in current or not e.unchanged(current[e.path].stat())
        ]
        if stale:
            loaded, reason = None, f"{len(stale)} embeddings files changed or removed ({stale[0]})"
    index, manifest, table = loaded if loaded else (None, None, WindowTable.empty())
    known = {e.path for e in manifest.files} if manifest else set()
    new = [name for name in current if name not in known]
    if reason:
        log.info("building the window index", extra=fields(reason=reason, files=len(new)))
    added, unreadable = _add(new, current, settings, index, manifest, table)
    index, manifest, table = added.index, added.manifest, added.table
    if added.files or loaded is None:
        _save(index_folder(results), index, manifest, table)
    update = IndexUpdate(
        files_added=added.files,
        windows_added=added.windows,
        windows=len(table),
        rebuilt=loaded is None,
        reason=reason,
        unreadable=tuple(unreadable),
        seconds=time.perf_counter() - began,
    )
    for name in unreadable:
        log.warning("embeddings file left out of the index", extra=fields(file=name))
    return WindowIndex(index, manifest, table, folder), update


@dataclass
class _Added:
    index: Any
    manifest: Manifest
    table: WindowTable
    files: int = 0
    windows: int = 0


def _add(
    names: Sequence[str],
    paths: dict[str, Path],
    settings: IndexSettings,
    index: Any,
    manifest: Manifest | None,
    table: WindowTable,
) -> tuple[_Added, list[str]]:
    """Add these files' windows, refusing another provenance than the index's."""
    entries = list(manifest.files) if manifest else []
    provenance, dim = (manifest.provenance, manifest.dim) if manifest else (None, 0)
    reference = entries[0].path if entries else None
    parts: list[StoredWindows] = []
    unreadable: list[str] = []
    next_id = len(table)
    for name in names:
        path = paths[name]
        try:
            stat = path.stat()
            w = read_windows(path)
        except (OSError, IncompatibleArtifact):
            unreadable.append(name)
            continue
        if provenance is None:
            provenance, dim, reference = w.provenance, int(w.vectors.shape[1]), name
        elif w.provenance != provenance or (len(w) and w.vectors.shape[1] != dim):
            differs = sorted(
                k
                for k in set(w.provenance) | set(provenance)
                if w.provenance.get(k) != provenance.get(k)
            )
            raise IncompatibleArtifact(
                f"{path} was made with different settings ({', '.join(differs) or 'dimension'}) "
                f"than {reference}: one index holds one model and window setting",
                path=str(path),
                differs=differs,
            )
        if index is None:
            index = usearch_index(dim, settings)
        if len(w):
            index.add(np.arange(next_id, next_id + len(w), dtype=np.uint64), unit_rows(w.vectors))
        entries.append(
            FileEntry(
                name,
                stat.st_size,
                stat.st_mtime_ns,
                w.recording,
                w.source,
                w.duration_s,
                next_id,
                len(w),
            )
        )
        next_id += len(w)
        parts.append(_without_vectors(w))
    if provenance is None:
        raise NotFound("no readable embeddings file: " + ", ".join(unreadable[:3]))
    if index is None:
        index = usearch_index(dim, settings)
    added = _Added(
        index,
        Manifest(provenance, dim, settings, tuple(entries)),
        table.extended(WindowTable.of(parts)) if parts else table,
        files=len(parts),
        windows=sum(len(p) for p in parts),
    )
    return added, unreadable


def _without_vectors(w: StoredWindows) -> StoredWindows:
    """The table needs times and labels only: the vectors are in the index."""
    return replace(w, vectors=np.zeros((len(w), 0), dtype=np.float32))


def _load(
    folder: Path, settings: IndexSettings
) -> tuple[tuple[Any, Manifest, WindowTable] | None, str]:
    """The stored index, or None and why it must be built."""
    if not (folder / MANIFEST_FILE).is_file():
        return None, "no index yet"
    try:
        manifest = Manifest.from_json((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (IncompatibleArtifact, OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable manifest ({exc})"
    if manifest.settings.build_key() != settings.build_key():
        return None, "other index settings"
    manifest = replace(manifest, settings=settings)  # expansion_search: a search setting
    try:
        index = usearch_index(manifest.dim, settings)
        index.load(str(folder / manifest.vectors_file))
        table = WindowTable.load(folder / manifest.table_file)
    except Exception as exc:  # a torn or foreign file, whatever the library says
        return None, f"unreadable index ({type(exc).__name__}: {exc})"
    if not len(index) == len(table) == manifest.windows or int(index.ndim) != manifest.dim:
        return None, "index, table and manifest disagree"
    index.expansion_search = settings.expansion_search
    return (index, manifest, table), ""


def _save(folder: Path, index: Any, manifest: Manifest, table: WindowTable) -> None:
    """Vectors and table under a new generation's names, then the manifest that names
    them, then the older generations' files go: a reader sees the old index or the new
    one, and a torn save reads as missing files (and rebuilds), never as a wrong index."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = replace(manifest, generation=uuid.uuid4().hex[:12])
    tmp = temp_path(folder / manifest.vectors_file)
    index.save(str(tmp))
    commit(tmp, folder / manifest.vectors_file)
    table.save(folder / manifest.table_file)
    atomic_write_text(folder / MANIFEST_FILE, manifest.to_json())
    for old in folder.glob("windows*"):
        if old.name not in (manifest.vectors_file, manifest.table_file):
            old.unlink(missing_ok=True)
