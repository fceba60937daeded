"""Raven selection tables and Audacity label files, written for a reviewer and read back.

A multi-file Raven table (its ``Begin Path`` differs between rows) runs its Begin and
End Times on over the files in the order of its companion ``.list.txt`` (as
BirdNET-Analyzer's combined table does), while ``File Offset (s)`` stays the time in the
row's own recording. Reading back takes each row's recording, its offset in it and its
label (an ``Annotation`` or ``Label`` column, Raven's usual names for a reviewer's notes).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bdisc.errors import ConfigError
from bdisc.fsutil import atomic_write_text
from bdisc.interop.analyzer_results import pick, read_table
from bdisc.outputs.birdnet_formats import RAVEN_HEADER

# BirdNET-Analyzer's Raven columns up to the frequency box, then the recording and offset.
RAVEN_COLUMNS = [*RAVEN_HEADER[:7], "Begin Path", "File Offset (s)"]
LABEL_COLUMNS = ("Annotation", "Label")


@dataclass(frozen=True)
class Selection:
    path: str  # the recording, as Raven should open it
    start_s: float  # in the recording
    end_s: float
    extra: dict[str, str] = field(default_factory=dict)  # further columns, in order


def write_raven(
    path: Path,
    selections: Sequence[Selection],
    durations: Mapping[str, float],
    band: tuple[int, int] = (0, 15_000),
) -> Path:
    """A selection table of ``selections`` (grouped by recording, in time order) and its
    list of recordings; ``durations`` gives each recording's length in seconds."""
    ordered = sorted(selections, key=lambda s: (s.path, s.start_s))
    files = list(dict.fromkeys(s.path for s in ordered))
    offsets, running = {}, 0.0
    for f in files:
        offsets[f] = running
        running += durations[f]
    extra = list(dict.fromkeys(k for s in ordered for k in s.extra))
    rows: list[list[object]] = [[*RAVEN_COLUMNS, *extra]]
    for i, s in enumerate(ordered, 1):
        at = offsets[s.path]
        rows.append(
            [
                i,
                "Spectrogram 1",
                1,
                _t(at + s.start_s),
                _t(at + s.end_s),
                band[0],
                band[1],
                s.path,
                _t(s.start_s),
                *(s.extra.get(k, "") for k in extra),
            ]
        )
    atomic_write_text(path, _tsv(rows))
    atomic_write_text(list_path(path), "".join(f"{f}\n" for f in files))
    return path


def list_path(table: Path) -> Path:
    return table.with_name(table.name.removesuffix(".txt") + ".list.txt")


def write_audacity(path: Path, spans: Sequence[tuple[float, float, str]]) -> Path:
    """Audacity's label track: start, end and text per line, tab-separated."""
    atomic_write_text(path, _tsv([[_t(s), _t(e), text] for s, e, text in sorted(spans)]))
    return path


@dataclass(frozen=True)
class LabelledSpan:
    path: str  # Begin Path as the table gives it
    start_s: float  # File Offset (s): in the recording
    end_s: float
    label: str  # "" when the row carries no label


def read_raven_labels(path: Path) -> list[LabelledSpan]:
    """The rows of a Raven selection table with a label column (Annotation or Label)."""
    cols, rows = read_table(path)
    begin_path = pick(cols, "Begin Path", "Begin File")
    offset = pick(cols, "File Offset (s)")
    begin, end = pick(cols, "Begin Time (s)"), pick(cols, "End Time (s)")
    label = pick(cols, *LABEL_COLUMNS)
    if not (begin_path and begin and end and label):
        raise ConfigError(
            f"{path}: a Raven table to import needs Begin Path, Begin Time (s), End Time (s) "
            f"and an {' or '.join(LABEL_COLUMNS)} column (it has {', '.join(cols)})",
            path=str(path),
        )
    spans = []
    for number, r in enumerate(rows, 2):
        try:
            length = float(r[end]) - float(r[begin])
            start = float(r[offset]) if offset and r.get(offset) else float(r[begin])
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: times are not numbers ({exc})") from exc
        spans.append(LabelledSpan(r[begin_path], start, start + length, r.get(label, "").strip()))
    return spans


def _t(seconds: float) -> str:
    return str(round(float(seconds), 3))


def _tsv(rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t", lineterminator="\n").writerows(rows)
    return buf.getvalue()
