"""The object store's layout over a ``bdisc discover`` output folder, so that the review
app (the gateway's own code) serves a results folder on this machine:

    projects/<p>/jobs/<j>/results/<path>  ->  RESULTS/<path>
    projects/<p>/audio/<recording>         ->  the recording where discover read it
                                              (from the embeddings' metadata)

Links to objects are served by the app itself (``/files/<key>``, ranged reads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from bdisc.adapters.local_store import LocalStore
from bdisc.errors import NotFound
from bdisc.outputs.embeddings import SUFFIX, file_metadata
from bdisc.ports.object_store import check_key

FILES_ROUTE = "/files/"
HIDDEN = {".bdisc", "embeddings"}


def recording_sources(results: Path) -> dict[str, Path]:
    """Each recording's path below the discovery's root -> where the file is."""
    sources = {}
    for meta in sorted((results / "embeddings").rglob(f"*{SUFFIX}")):
        recording = file_metadata(meta)["recording"]
        sources[str(recording["path"])] = Path(recording["source"])
    return sources


class ResultsStore(LocalStore):
    def __init__(self, results: Path, project: str, job_id: str) -> None:
        self.root = results.resolve()
        self.results_prefix = f"projects/{project}/jobs/{job_id}/results/"
        self.audio_prefix = f"projects/{project}/audio/"
        self.sources = recording_sources(self.root)

    def _path(self, key: str) -> Path:
        key = check_key(key)
        if key.startswith(self.results_prefix):
            return self.root / key[len(self.results_prefix) :]
        if key.startswith(self.audio_prefix) and key[len(self.audio_prefix) :] in self.sources:
            return self.sources[key[len(self.audio_prefix) :]]
        raise NotFound(f"no object {key!r}", key=key)

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except NotFound:
            return False

    def list(self, prefix: str = "") -> Iterator[str]:
        keys = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if d not in HIDDEN]
            for name in files:
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                key = self.results_prefix + rel
                if key.startswith(prefix) and not name.startswith("."):
                    keys.append(key)
        keys += [self.audio_prefix + rel for rel in self.sources]
        yield from sorted(k for k in keys if k.startswith(prefix))

    def url(self, key: str, expires_s: int = 3600) -> str:
        if not self.exists(key):
            raise NotFound(f"no object {key!r}", key=key)
        return FILES_ROUTE + key

    def local_path(self, key: str) -> Path:
        """The file behind a key (the app serves links to it)."""
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r}", key=key)
        return path
