"""Small file-system helpers: atomic writes, so an interrupted run never leaves half files."""

from __future__ import annotations

import os
from pathlib import Path


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def commit(tmp: Path, path: Path) -> None:
    """Move a finished temporary file into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, path)
