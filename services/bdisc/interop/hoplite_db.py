"""BirdNET-Analyzer 2.4's embeddings database: a perch-hoplite 0.1.x folder holding
``hoplite.sqlite`` (sources, window offsets, metadata) and ``usearch.index`` (the vectors,
float16, inner product, keyed by the embedding id).

BirdNET-Analyzer 2.4.0 writes and reads this with ``perch-hoplite<1.0``; perch-hoplite 1.0
renamed its classes and changed the layout, so this is the 0.1.x layout exactly, which
both BirdNET-Analyzer 2.4's ``search`` and perch-hoplite 0.1.x open.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound

SQLITE_FILE = "hoplite.sqlite"
INDEX_FILE = "usearch.index"
DATASET = "birdnet_analyzer_dataset"  # BirdNET-Analyzer's dataset name for its sources
USEARCH_CONFIG = "usearch_config"
ANALYZER_SETTINGS = "birdnet_analyzer_settings"
DEFAULT_USEARCH = {
    "embedding_dim": 1024,
    "dtype": "float16",
    "metric_name": "IP",
    "expansion_add": 256,
    "expansion_search": 128,
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS hoplite_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset STRING NOT NULL,
    source STRING NOT NULL
);
CREATE TABLE IF NOT EXISTS hoplite_embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_idx INTEGER NOT NULL,
    offsets BLOB NOT NULL,
    FOREIGN KEY (source_idx) REFERENCES hoplite_sources(id)
);
CREATE TABLE IF NOT EXISTS hoplite_metadata (
    key STRING PRIMARY KEY,
    data STRING NOT NULL
);
CREATE TABLE IF NOT EXISTS hoplite_labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    embedding_id INTEGER NOT NULL,
    label STRING NOT NULL,
    type INT NOT NULL,
    provenance STRING NOT NULL,
    FOREIGN KEY (embedding_id) REFERENCES hoplite_embeddings(id)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_embedding ON hoplite_embeddings (id);
CREATE UNIQUE INDEX IF NOT EXISTS source_pairs ON hoplite_sources (dataset, source);
CREATE INDEX IF NOT EXISTS embedding_source ON hoplite_embeddings (source_idx);
CREATE INDEX IF NOT EXISTS idx_label ON hoplite_labels (embedding_id, label);
"""


@dataclass(frozen=True)
class StoredWindows:
    """One recording's windows in a store: times and embeddings, in time order."""

    source: str  # the recording's path as the store names it
    starts: np.ndarray  # float64 (n,)
    ends: np.ndarray  # float64 (n,)
    embeddings: np.ndarray  # float32 (n, dim)


@dataclass(frozen=True)
class Unreadable:
    """A recording of a store whose windows cannot be read (the others still can)."""

    source: str
    message: str


@dataclass(frozen=True)
class StoreSettings:
    """What a store records about how its embeddings were made."""

    embedding_dim: int
    dtype: str
    bandpass_fmin: float | None
    bandpass_fmax: float | None
    audio_speed: float | None


def _usearch() -> Any:
    try:
        from usearch.index import Index
    except ImportError as exc:  # pragma: no cover - a deployment without the extra
        raise ConfigError(
            "reading or writing a hoplite database needs usearch: pip install usearch"
        ) from exc
    return Index


def is_hoplite_db(path: Path) -> bool:
    return path.is_dir() and (path / SQLITE_FILE).is_file()


def fingerprint(path: Path) -> str:
    """Changes whenever the database does (sizes and modification times)."""
    parts = []
    for name in (SQLITE_FILE, INDEX_FILE):
        stat = (path / name).stat()
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return ";".join(parts)


def read_settings(path: Path) -> StoreSettings:
    if not is_hoplite_db(path):
        raise NotFound(f"no BirdNET-Analyzer embeddings database ({SQLITE_FILE}) in {path}")
    if not (path / INDEX_FILE).is_file():
        raise NotFound(f"{path} has {SQLITE_FILE} but no {INDEX_FILE}", path=str(path))
    try:
        with closing(sqlite3.connect(f"file:{path / SQLITE_FILE}?mode=ro", uri=True)) as db:
            meta = {
                k: json.loads(v) for k, v in db.execute("SELECT key, data FROM hoplite_metadata")
            }
    except (sqlite3.Error, ValueError) as exc:
        raise IncompatibleArtifact(
            f"{path / SQLITE_FILE} is not a hoplite database: {exc}"
        ) from exc
    if USEARCH_CONFIG not in meta:
        raise IncompatibleArtifact(
            f"{path / SQLITE_FILE} records no {USEARCH_CONFIG}", path=str(path)
        )
    usearch, analyzer = meta[USEARCH_CONFIG], meta.get(ANALYZER_SETTINGS, {})
    return StoreSettings(
        embedding_dim=int(usearch["embedding_dim"]),
        dtype=str(usearch.get("dtype", "float16")),
        bandpass_fmin=_number(analyzer.get("BANDPASS_FMIN")),
        bandpass_fmax=_number(analyzer.get("BANDPASS_FMAX")),
        audio_speed=_number(analyzer.get("AUDIO_SPEED")),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def read_sources(path: Path) -> Iterator[StoredWindows | Unreadable]:
    """Every recording in the database with its windows (one recording in memory at a
    time); a recording whose windows are broken comes as ``Unreadable``."""
    settings = read_settings(path)
    index = _usearch().restore(str(path / INDEX_FILE), view=True)
    if index is None or int(index.ndim) != settings.embedding_dim:
        raise IncompatibleArtifact(
            f"{path / INDEX_FILE} does not hold {settings.embedding_dim}-d vectors"
        )
    with closing(sqlite3.connect(f"file:{path / SQLITE_FILE}?mode=ro", uri=True)) as db:
        sources = db.execute("SELECT id, source FROM hoplite_sources ORDER BY id").fetchall()
        for source_id, source in sources:
            rows = db.execute(
                "SELECT id, offsets FROM hoplite_embeddings WHERE source_idx = ? ORDER BY id",
                (source_id,),
            ).fetchall()
            if rows:
                try:
                    yield _windows(index, str(source), rows)
                except IncompatibleArtifact as exc:
                    yield Unreadable(str(source), exc.message)


def _windows(index: Any, source: str, rows: list[tuple[int, bytes]]) -> StoredWindows:
    ids = np.array([r[0] for r in rows], dtype=np.uint64)
    offsets = np.stack([_offsets(r[1]) for r in rows])
    vectors = index.get(ids)
    missing = sum(v is None for v in vectors)
    if missing:
        raise IncompatibleArtifact(f"the index lacks the vectors of {missing} windows")
    order = np.argsort(offsets[:, 0], kind="stable")
    return StoredWindows(
        source,
        offsets[order, 0],
        offsets[order, 1],
        np.vstack(vectors).astype(np.float32)[order],
    )


def _plain(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def _offsets(blob: bytes) -> np.ndarray:
    # Old databases stored one float16 offset; BirdNET-Analyzer 2.4 stores [start, end].
    dtype = "<f2" if len(blob) == 2 else "<f4"
    values = np.frombuffer(blob, dtype=dtype).astype(np.float64)
    if values.size != 2:
        raise IncompatibleArtifact(
            f"window offsets of {values.size} values, expected start and end"
        )
    return values


class HopliteWriter:
    """Writes a BirdNET-Analyzer 2.4 embeddings database (replacing ``path``)."""

    def __init__(self, path: Path, settings: StoreSettings, *, replace: bool = True) -> None:
        if replace and path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path / SQLITE_FILE)
        self.db.executescript(SCHEMA)
        config = {**DEFAULT_USEARCH, "embedding_dim": settings.embedding_dim}
        analyzer = {  # as BirdNET-Analyzer writes them (15000, not 15000.0)
            "BANDPASS_FMIN": _plain(settings.bandpass_fmin),
            "BANDPASS_FMAX": _plain(settings.bandpass_fmax),
            "AUDIO_SPEED": settings.audio_speed,
        }
        for key, value in ((USEARCH_CONFIG, config), (ANALYZER_SETTINGS, analyzer)):
            self.db.execute(
                "INSERT OR REPLACE INTO hoplite_metadata (key, data) VALUES (?, ?)",
                (key, json.dumps(value)),
            )
        index_cls = _usearch()
        self.index = index_cls(
            ndim=settings.embedding_dim,
            metric="ip",
            dtype="f16",
            expansion_add=DEFAULT_USEARCH["expansion_add"],
            expansion_search=DEFAULT_USEARCH["expansion_search"],
        )

    def add(self, source: str, starts: np.ndarray, ends: np.ndarray, vectors: np.ndarray) -> None:
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO hoplite_sources (dataset, source) VALUES (?, ?)",
            (DATASET, source),
        )
        source_id = self.db.execute(
            "SELECT id FROM hoplite_sources WHERE dataset = ? AND source = ?", (DATASET, source)
        ).fetchone()[0]
        ids = []
        for start, end in zip(starts, ends, strict=True):
            blob = np.array([start, end], dtype="<f4").tobytes()
            cursor = self.db.execute(
                "INSERT INTO hoplite_embeddings (source_idx, offsets) VALUES (?, ?)",
                (source_id, blob),
            )
            ids.append(int(cursor.lastrowid or 0))
        if ids:
            self.index.add(np.array(ids, dtype=np.uint64), np.asarray(vectors, dtype=np.float16))

    def close(self) -> None:
        self.db.commit()
        self.db.close()
        self.index.save(str(self.path / INDEX_FILE))
