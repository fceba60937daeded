"""Where audio and artifacts live: a folder in embedded mode, MinIO/S3 when deployed.

Keys are ``/``-separated relative paths. ``check_key`` is the one place that refuses
absolute paths, ``..`` and empty segments, so no adapter can be led outside its root.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bdisc.errors import UserError


def check_key(key: str) -> str:
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise UserError(f"invalid object key {key!r}: use a relative path without '..'", key=key)
    return key


@dataclass(frozen=True)
class UploadForm:
    """A presigned upload: POST ``fields`` and then the file (``file``, last) as
    multipart/form-data to ``url``. The store itself refuses another key, a larger file
    or a late upload (S3's POST policy); locally, ``url`` is the file to copy to."""

    url: str
    fields: dict[str, str] = field(default_factory=dict)
    max_bytes: int = 0


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str = ...) -> None: ...

    def put_file(self, key: str, path: Path, content_type: str = ...) -> None:
        """Upload a file without reading it into memory (multipart for large files)."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, path: Path) -> None:
        """Stream an object to a local file."""
        ...

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end of the object)."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def version(self, key: str) -> str:
        """What identifies the object's content: it changes whenever the object is
        replaced (S3: size and ETag; a folder: size and modification time)."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, recursively, sorted."""
        ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str, expires_s: int = 3600) -> str:
        """A link a client can download from (presigned for S3, file:// locally)."""
        ...

    def upload_form(self, key: str, max_bytes: int, expires_s: int = 3600) -> UploadForm:
        """A form a client can POST the object with directly (large files skip the
        gateway), for this key only and at most ``max_bytes``."""
        ...
