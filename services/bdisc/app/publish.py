"""A stage's local output folder -> objects under a prefix, replacing an earlier run's."""

from __future__ import annotations

from pathlib import Path

from bdisc.ports.object_store import ObjectStore

CONTENT_TYPES = {
    ".png": "image/png",
    ".html": "text/html",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
}


def content_type(path: Path, default: str = "application/octet-stream") -> str:
    return CONTENT_TYPES.get(path.suffix, default)


def publish_folder(objects: ObjectStore, folder: Path, prefix: str) -> list[str]:
    """Upload every file of ``folder`` (hidden files excepted) under ``prefix``; delete
    what an earlier run left there that this one did not write (clustering again after
    a retry can give fewer clusters). Returns the keys written."""
    written: list[str] = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            key = prefix + f.relative_to(folder).as_posix()
            objects.put_file(key, f, content_type=content_type(f))
            written.append(key)
    keep = set(written)
    for key in list(objects.list(prefix)):
        if key not in keep:
            objects.delete(key)
    return written
