"""Which recording of a run another tool's path names.

Other tools name recordings by the path they had there: BirdNET-Analyzer's database by
the absolute path it analysed, its 1.x text files and per-recording tables by their own
path without the audio extension, Raven tables by Begin Path. A path names the run's
recording whose path below the input folder is the longest tail of it (audio extensions
aside); a name two recordings share names neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from bdisc.audio.formats import AUDIO_EXTENSIONS

T = TypeVar("T")
_AMBIGUOUS = object()


def without_audio_extension(path: str) -> str:
    head, dot, ext = path.rpartition(".")
    return head if dot and f".{ext.lower()}" in AUDIO_EXTENSIONS and "/" not in ext else path


def tails(path: str) -> list[str]:
    """``/a/b/c.wav`` -> ``a/b/c``, ``b/c``, ``c``: longest first, extension dropped."""
    parts = [p for p in without_audio_extension(path.replace("\\", "/")).split("/") if p]
    return ["/".join(parts[i:]) for i in range(len(parts))]


class TailIndex(Generic[T]):
    """Items by their paths (a recording's path below the input folder and its absolute
    path); ``find`` returns the item a foreign path names, or None."""

    def __init__(self, named: Iterable[tuple[Iterable[str], T]]) -> None:
        self._by: dict[str, object] = {}
        for names, item in named:
            for name in {"/".join(tails(n)[:1]) for n in names}:
                if not name:
                    continue
                self._by[name] = _AMBIGUOUS if self._by.get(name, item) is not item else item

    def find(self, path: str) -> T | None:
        for tail in tails(path):
            hit = self._by.get(tail)
            if hit is _AMBIGUOUS:
                return None
            if hit is not None:
                return hit  # type: ignore[return-value]
        return None
