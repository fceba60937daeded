"""What a window index holds, stored as ``index/manifest.json``: the embeddings files it
was built from (by size and modification time, as resume recognises files), the window
provenance they share, and the index settings. Ids are contiguous per file, in the
order the files were added: file ``f`` holds ids ``f.first_id`` to ``f.first_id +
f.count - 1``, one per window in time order."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from bdisc.errors import ConfigError, IncompatibleArtifact

FORMAT = 1
# usearch's scalar kinds we store vectors as: f16 halves the memory of f32 for a recall
# within 1 % of it (bench/search_scale.py). Not i8: usearch quantises unit vectors in
# steps of 1/127, and a unit BirdNET embedding's components are about 0.03 (1024
# non-negative values), so recall@100 falls to about 0.85.
DTYPES = ("f32", "f16")


@dataclass(frozen=True)
class IndexSettings:
    """How the graph is built and searched (HNSW: links per node, candidate lists), and
    up to how much work a search is exact instead."""

    dtype: str = "f16"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128
    # A search compares every stored window with every query while (queries x windows)
    # is at most this: exact, and the same answer however the graph was built (a graph
    # built on several threads differs run to run, and HNSW can miss a neighbour even
    # among 124 windows). Measured with usearch's exhaustive f16 search on this 2-core
    # machine: one query over 200,000 windows 0.06 s, 100 queries 2.9 s. So one search
    # by example is exact up to 5 M windows (about 1.5 s); duplicates (every window of a
    # recording as queries) are exact on small folders and use the graph on large ones.
    exact_pairs: int = 5_000_000

    def build_key(self) -> tuple[str, int, int]:
        """What the stored graph depends on (expansion_search is set when searching)."""
        return (self.dtype, self.connectivity, self.expansion_add)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"index dtype must be one of {', '.join(DTYPES)}, got {self.dtype}")
        if min(self.connectivity, self.expansion_add, self.expansion_search) < 2:
            raise ConfigError("index connectivity and expansions must be >= 2")
        if self.exact_pairs < 0:
            raise ConfigError(f"index exact_pairs must be >= 0, got {self.exact_pairs}")


@dataclass(frozen=True)
class FileEntry:
    """One embeddings file in the index (one recording)."""

    path: str  # relative to the embeddings folder, posix
    size: int
    mtime_ns: int
    recording: str  # the recording, relative to the input root (as the file names it)
    source: str  # where the recording was read from (for montages and clips)
    duration_s: float
    first_id: int
    count: int

    def unchanged(self, stat: os.stat_result) -> bool:
        return self.size == stat.st_size and self.mtime_ns == stat.st_mtime_ns


@dataclass(frozen=True)
class Manifest:
    provenance: dict[str, Any]  # the files' shared window provenance
    dim: int
    settings: IndexSettings
    files: tuple[FileEntry, ...] = field(default=())
    # Names the vectors and table files this manifest goes with (``windows-<g>.*``): a
    # manifest never pairs with another save's files, even where two writers race.
    generation: str = ""

    @property
    def windows(self) -> int:
        return sum(f.count for f in self.files)

    @property
    def vectors_file(self) -> str:
        return self._data_file("usearch")

    @property
    def table_file(self) -> str:
        return self._data_file("parquet")

    def _data_file(self, suffix: str) -> str:
        return f"windows-{self.generation}.{suffix}" if self.generation else f"windows.{suffix}"

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "provenance": self.provenance,
            "dim": self.dim,
            "settings": asdict(self.settings),
            "files": [asdict(f) for f in self.files],
            "generation": self.generation,
        }
        return json.dumps(body, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Raises IncompatibleArtifact for anything but a manifest this version wrote."""
        try:
            body = json.loads(text)
            if body.get("format") != FORMAT:
                raise IncompatibleArtifact(f"index manifest format {body.get('format')!r}")
            return cls(
                provenance=dict(body["provenance"]),
                dim=int(body["dim"]),
                settings=IndexSettings(**body["settings"]),
                files=tuple(FileEntry(**f) for f in body["files"]),
                generation=_generation(body.get("generation", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError, ConfigError) as exc:
            raise IncompatibleArtifact(f"unreadable index manifest: {exc}") from exc


def _generation(value: object) -> str:
    """A save's generation names files: hex only ("" in older manifests: fixed names)."""
    text = str(value)
    if not re.fullmatch(r"[0-9a-f]{0,32}", text):
        raise ValueError(f"bad generation {text!r}")
    return text
