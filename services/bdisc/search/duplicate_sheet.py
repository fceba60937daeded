"""``duplicates.csv`` (the evidence) and ``duplicates_exclude.csv`` (the copies, as spans
discovery can leave out: recording, start_s, end_s; a whole recording is 0 to its
duration)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from bdisc.fsutil import atomic_write_text
from bdisc.search.duplicates import Duplicate, Exclusion

DUPLICATES_FILE = "duplicates.csv"
EXCLUDE_FILE = "duplicates_exclude.csv"
DUPLICATE_COLUMNS = [
    "recording_a",
    "recording_b",
    "kind",
    "start_a_s",
    "end_a_s",
    "start_b_s",
    "end_b_s",
    "windows",
    "max_distance",
]
EXCLUDE_COLUMNS = ["recording", "start_s", "end_s", "kind", "duplicate_of"]


def _text(rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_duplicates(path: Path, found: Sequence[Duplicate]) -> None:
    body = [
        [
            d.recording_a,
            d.recording_b,
            d.kind,
            f"{d.start_a_s:g}",
            f"{d.end_a_s:g}",
            f"{d.start_b_s:g}",
            f"{d.end_b_s:g}",
            d.windows,
            f"{d.max_distance:.6f}",
        ]
        for d in found
    ]
    atomic_write_text(path, _text([DUPLICATE_COLUMNS, *body]))


def write_exclusions(path: Path, spans: Sequence[Exclusion]) -> None:
    body = [[e.recording, f"{e.start_s:g}", f"{e.end_s:g}", e.kind, e.duplicate_of] for e in spans]
    atomic_write_text(path, _text([EXCLUDE_COLUMNS, *body]))


def read_exclusions(path: Path) -> list[Exclusion]:
    """The spans of an exclusion list (what discovery reads to leave them out)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [
            Exclusion(
                r["recording"], float(r["start_s"]), float(r["end_s"]), r["kind"], r["duplicate_of"]
            )
            for r in csv.DictReader(f)
        ]
