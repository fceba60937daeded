"""ObjectStore on a local folder (embedded mode and tests)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from bdisc.errors import NotFound
from bdisc.fsutil import commit, temp_path
from bdisc.ports.object_store import UploadForm, check_key


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        tmp.write_bytes(data)
        commit(tmp, path)

    def put_file(self, key: str, path: Path, content_type: str = "") -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(dest)
        shutil.copyfile(path, tmp)
        commit(tmp, dest)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key!r}", key=key) from exc

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(offset)
                return f.read(max(0, length))
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key!r}", key=key) from exc

    def download(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFound(f"no object {key!r}", key=key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key!r}", key=key) from exc

    def version(self, key: str) -> str:
        try:
            stat = self._path(key).stat()
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key!r}", key=key) from exc
        return f"{stat.st_size}-{stat.st_mtime_ns}"

    def list(self, prefix: str = "") -> Iterator[str]:
        keys = []
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # an upload in progress
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str, expires_s: int = 3600) -> str:
        if not self.exists(key):
            raise NotFound(f"no object {key!r}", key=key)
        return self._path(key).as_uri()

    def upload_form(self, key: str, max_bytes: int, expires_s: int = 3600) -> UploadForm:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return UploadForm(path.as_uri(), {}, max_bytes)  # a local "upload" is a copy here
