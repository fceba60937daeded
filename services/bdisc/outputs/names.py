"""How a recording's outputs are named, and which recordings of a run would share names.

Outputs mirror the input tree with the recording's extension replaced: ``site/x.flac``
gives ``site/x.embeddings.parquet`` and ``site/x.BirdNET.results.csv``. Two recordings
that differ only in extension (``x.flac`` and ``x.mp3``) would therefore write the same
files, and one would silently overwrite the other. Letter case counts as no difference
(``x.wav`` and ``X.WAV``), because the output folder may be on a case-insensitive disk
(macOS, Windows, most memory cards). A run keeps the first of such recordings in sorted
order and refuses each other one with a per-recording ``NameClash``: by name alone, so
which one is kept never depends on which one happens to be readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath, PurePosixPath

from bdisc.errors import NameClash


def output_stem(rel: str | PurePath) -> PurePosixPath:
    """The recording's path (relative to the input base) without its extension: what its
    output files are named after."""
    return PurePosixPath(PurePath(rel).as_posix()).with_suffix("")


def _key(rel: str) -> str:
    return output_stem(rel).as_posix().casefold()


def name_clashes(rels: Iterable[str]) -> dict[str, str]:
    """Each recording (posix path relative to the input base) whose outputs would take
    the name of another's, mapped to the one that keeps it: the first in sorted order."""
    owner: dict[str, str] = {}
    refused: dict[str, str] = {}
    for rel in sorted(set(rels)):
        kept = owner.setdefault(_key(rel), rel)
        if kept != rel:
            refused[rel] = kept
    return refused


def name_clash(rel: str, kept: str) -> NameClash:
    """The error of a recording refused because ``kept`` owns its output names."""
    differ = []
    if output_stem(rel) != output_stem(kept):
        differ.append("letter case")
    if PurePosixPath(rel).suffix != PurePosixPath(kept).suffix:
        differ.append("extension")
    return NameClash(
        f"{rel} has the same name as {kept} apart from its {' and '.join(differ)}: their "
        f"outputs would overwrite each other, so only {kept} is processed; rename one of "
        "them to process both",
        path=rel,
        kept=kept,
    )
