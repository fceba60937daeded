"""A stored object as a seekable, read-only file: decoders read headers through ranged
GETs, so probing a 2-GB recording in S3 fetches kilobytes, not the recording."""

from __future__ import annotations

import io

from bdisc.ports.object_store import ObjectStore

BLOCK = 256 * 1024


class _ObjectRaw(io.RawIOBase):
    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        self.store, self.key, self.length, self.pos = store, key, size, 0
        self.requests = 0  # ranged reads made: how little was fetched

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.length - self.pos)
        if want <= 0:
            return 0
        data = self.store.read_range(self.key, self.pos, want)
        self.requests += 1
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def open_object(
    store: ObjectStore, key: str, size: int | None = None, block: int = BLOCK
) -> io.BufferedReader:
    """Open ``key`` (of ``size`` bytes, looked up if not given); NotFound if missing."""
    length = store.size(key) if size is None else size
    return io.BufferedReader(_ObjectRaw(store, key, length), buffer_size=block)
