"""Receiving an upload: streamed to a local file in chunks, refused past the size limit."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from bdisc.errors import TooLarge

CHUNK = 1 << 20


def receive(source: BinaryIO, dest: Path, limit: int) -> int:
    """Copy ``source`` into ``dest``; TooLarge (413) once it passes ``limit`` bytes."""
    size = 0
    with dest.open("wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"upload larger than {limit} bytes")
            out.write(chunk)
    return size
