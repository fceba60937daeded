"""BirdNET-Analyzer 1.x's embeddings files: ``<recording>.birdnet.embeddings.txt`` beside
or mirroring the recordings, one window per line: ``start<TAB>end<TAB>v1,v2,...``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bdisc.errors import IncompatibleArtifact, NotFound
from bdisc.interop.hoplite_db import StoredWindows, Unreadable
from bdisc.outputs.embeddings import TEXT_SUFFIX


def text_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise NotFound(f"no such embeddings file or folder: {path}", path=str(path))
    return sorted(path.rglob(f"*{TEXT_SUFFIX}"))


def read_text_file(path: Path, root: Path) -> StoredWindows:
    """One file; its source is its path under ``root`` without the suffix (``site/rec``)."""
    starts, ends, vectors = [], [], []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                start, end, values = line.rstrip("\n").split("\t")
                starts.append(float(start))
                ends.append(float(end))
                vectors.append(np.array(values.split(","), dtype=np.float32))
            except ValueError as exc:
                raise IncompatibleArtifact(
                    f"{path}:{number}: not 'start<TAB>end<TAB>values' ({exc})", path=str(path)
                ) from exc
    if not vectors or len({v.size for v in vectors}) != 1:
        raise IncompatibleArtifact(
            f"{path}: no windows, or windows of different sizes", path=str(path)
        )
    rel = path.relative_to(root).as_posix() if path != root else path.name
    order = np.argsort(np.array(starts), kind="stable")
    return StoredWindows(
        rel.removesuffix(TEXT_SUFFIX),
        np.array(starts, dtype=np.float64)[order],
        np.array(ends, dtype=np.float64)[order],
        np.stack(vectors)[order],
    )


def read_text_sources(path: Path) -> Iterator[StoredWindows | Unreadable]:
    root = path if path.is_dir() else path.parent
    for file in text_files(path):
        try:
            yield read_text_file(file, root)
        except IncompatibleArtifact as exc:
            yield Unreadable(str(file), exc.message)
