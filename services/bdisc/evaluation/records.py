"""The records evaluation works on: scored detections and ground truth, already mapped."""

from __future__ import annotations

from dataclasses import dataclass

from bdisc.outputs.embeddings import SUFFIX as EMBEDDINGS_SUFFIX


@dataclass(frozen=True)
class Detection:
    recording: str  # recording name: file stem, no folder, no extension
    species: str
    score: float
    start_s: float | None = None  # None: anywhere in the recording (file-level tables)
    end_s: float | None = None


@dataclass(frozen=True)
class Annotation:
    recording: str
    species: str
    start_s: float | None = None  # None: present somewhere in the file (file-level truth)
    end_s: float | None = None


def recording_name(path_or_name: str) -> str:
    """``/data/site/20220606_160000.BirdNET.results.csv`` and ``20220606_160000.wav`` both
    name recording ``20220606_160000``."""
    name = path_or_name.replace("\\", "/").rsplit("/", 1)[-1]
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in (
        ".BirdNET.results.csv",
        ".BirdNET.selection.table.txt",
        ".BirdNET.results.kaleidoscope.csv",
        ".BirdNET.results.txt",
        EMBEDDINGS_SUFFIX,
        ".Table.1.selections.txt",
        ".selections.txt",
    ):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    stem, dot, ext = name.rpartition(".")
    return stem if dot and ext.lower() in {"wav", "flac", "mp3", "ogg", "csv", "txt"} else name
