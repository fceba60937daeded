"""What was already computed: content hashes and per-recording state records.

A recording is skipped when its state record names the same content hash and the same
parameter key as the current run, and every output it lists still exists. Hashes are
cached by (path, size, mtime) so that a re-run does not read every file twice. Records
that a clash of output names (``outputs/names.py``) leaves in doubt are forgotten.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bdisc.fsutil import atomic_write_text

STATE_DIR = ".bdisc"
HASH_CHUNK = 1 << 20


def hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns)


class HashCache:
    """Content hashes by absolute path, valid while size and mtime are unchanged."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / STATE_DIR / "hashes.jsonl"
        self._known: dict[str, tuple[FileStamp, str]] = {}
        self._new: list[dict[str, Any]] = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    stamp = FileStamp(int(rec["size"]), int(rec["mtime_ns"]))
                    self._known[rec["path"]] = (stamp, str(rec["hash"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line after a crash: ignore it

    def lookup(self, path: Path, stamp: FileStamp) -> str | None:
        known = self._known.get(str(path))
        return known[1] if known and known[0] == stamp else None

    def remember(self, path: Path, stamp: FileStamp, digest: str) -> None:
        if self.lookup(path, stamp) == digest:
            return
        self._known[str(path)] = (stamp, digest)
        self._new.append(
            {"path": str(path), "size": stamp.size, "mtime_ns": stamp.mtime_ns, "hash": digest}
        )

    def save(self) -> None:
        if not self._new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for rec in self._new:
                f.write(json.dumps(rec) + "\n")
        self._new.clear()


def state_path(out_dir: Path, job: str, rel: Path) -> Path:
    return out_dir / STATE_DIR / "state" / job / (rel.as_posix() + ".json")


def load_state(path: Path, content_hash: str, key: str, out_dir: Path) -> dict[str, Any] | None:
    """The state record if it still describes valid outputs, else None."""
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if state.get("content_hash") != content_hash or state.get("key") != key:
        return None
    if not all((out_dir / p).is_file() for p in state.get("outputs", [])):
        return None
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(state, separators=(",", ":")))


def forget_clashing(out_dir: Path, job: str, clashes: dict[str, str]) -> None:
    """Drop the state records that clashing names make untrustworthy. A refused
    recording with a record was run before its clash was refused (by an older bdisc, or
    before the recording that now keeps the name was added): it wrote the same files as
    the kept one, so neither record says what those files hold. The kept recording is
    then computed again, once; the refused one is never taken for done."""
    for refused, kept in clashes.items():
        record = state_path(out_dir, job, Path(refused))
        own = state_path(out_dir, job, Path(kept))
        # on a case-insensitive disk x.WAV's record is x.wav's own: not a stale one
        if record.is_file() and not (own.is_file() and record.samefile(own)):
            record.unlink()
            own.unlink(missing_ok=True)
