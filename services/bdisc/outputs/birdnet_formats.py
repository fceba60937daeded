"""Detections in BirdNET-Analyzer's file formats, so tools that read those read ours.

Per recording: CSV (``.BirdNET.results.csv``), Raven selection table
(``.BirdNET.selection.table.txt``), Audacity labels (``.BirdNET.results.txt``) and
Kaleidoscope CSV (``.BirdNET.results.kaleidoscope.csv``). Per run: the combined tables
``BirdNET_CombinedTable.csv``, ``BirdNET_SelectionTable.txt`` and ``BirdNET_Kaleidoscope.csv``.
Column names, separators and number formats follow BirdNET-Analyzer 2.x.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bdisc.audio.bandpass import MODEL_FMAX, MODEL_FMIN
from bdisc.fsutil import atomic_write_text
from bdisc.model.labels import Label
from bdisc.params import AnalysisParams

FORMATS = ("csv", "table", "audacity", "kaleidoscope")
SUFFIX = {
    "csv": ".BirdNET.results.csv",
    "table": ".BirdNET.selection.table.txt",
    "audacity": ".BirdNET.results.txt",
    "kaleidoscope": ".BirdNET.results.kaleidoscope.csv",
}
COMBINED = {
    "csv": "BirdNET_CombinedTable.csv",
    "table": "BirdNET_SelectionTable.txt",
    "kaleidoscope": "BirdNET_Kaleidoscope.csv",
}
CSV_HEADER = ["Start (s)", "End (s)", "Scientific name", "Common name", "Confidence", "File"]
RAVEN_HEADER = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Common Name",
    "Species Code",
    "Confidence",
    "Begin Path",
    "File Offset (s)",
]
KALEIDOSCOPE_HEADER = [
    "INDIR",
    "FOLDER",
    "IN FILE",
    "OFFSET",
    "DURATION",
    "scientific_name",
    "common_name",
    "confidence",
    "lat",
    "lon",
    "week",
    "overlap",
    "sensitivity",
]


@dataclass(frozen=True)
class DetectionRow:
    start_s: float
    end_s: float
    label: Label
    score: float


@dataclass(frozen=True)
class RecordingDetections:
    source: Path  # the recording, as it will be written into the tables
    source_rate: int  # native sample rate: caps the Raven frequency box
    duration_s: float
    rows: Sequence[DetectionRow]


def fmt_time(seconds: float) -> str:
    return str(round(float(seconds), 4))


def _table(rows: list[list[str]], delimiter: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def csv_rows(rec: RecordingDetections) -> list[list[str]]:
    return [
        [
            fmt_time(r.start_s),
            fmt_time(r.end_s),
            r.label.scientific,
            r.label.common,
            f"{r.score:.4f}",
            str(rec.source),
        ]
        for r in rec.rows
    ]


def raven_rows(
    rec: RecordingDetections,
    params: AnalysisParams,
    first_id: int = 1,
    offset_s: float = 0.0,
    nocall: bool = True,
) -> list[list[str]]:
    high = int(min(rec.source_rate / 2, MODEL_FMAX, params.bandpass.fmax))
    low = int(max(MODEL_FMIN, params.bandpass.fmin))
    rows = [
        [
            str(first_id + i),
            "Spectrogram 1",
            "1",
            fmt_time(r.start_s + offset_s),
            fmt_time(r.end_s + offset_s),
            str(low),
            str(high),
            r.label.common,
            r.label.key,
            f"{r.score:.4f}",
            str(rec.source),
            fmt_time(r.start_s),
        ]
        for i, r in enumerate(rec.rows)
    ]
    if not rows and nocall:
        # BirdNET-Analyzer writes one dummy line so that empty tables still combine.
        rows = [
            [
                str(first_id),
                "Spectrogram 1",
                "1",
                "0",
                "3",
                str(low),
                str(high),
                "nocall",
                "nocall",
                "1.0",
                str(rec.source),
                "0",
            ]
        ]
    return rows


def audacity_rows(rec: RecordingDetections) -> list[list[str]]:
    return [
        [
            fmt_time(r.start_s),
            fmt_time(r.end_s),
            f"{r.label.scientific}, {r.label.common}",
            f"{r.score:.4f}",
        ]
        for r in rec.rows
    ]


def kaleidoscope_rows(rec: RecordingDetections, params: AnalysisParams) -> list[list[str]]:
    folder = rec.source.parent
    lat = params.lat if params.lat is not None else -1.0
    lon = params.lon if params.lon is not None else -1.0
    return [
        [
            str(folder.parent),
            folder.name,
            rec.source.name,
            fmt_time(r.start_s),
            fmt_time(r.end_s - r.start_s),
            r.label.scientific,
            r.label.common,
            f"{r.score:.4f}",
            f"{lat:.4f}",
            f"{lon:.4f}",
            str(params.week),
            str(params.overlap_s),
            str(params.sensitivity),
        ]
        for r in rec.rows
    ]


def render(fmt: str, rec: RecordingDetections, params: AnalysisParams) -> str:
    if fmt == "csv":
        return _table([CSV_HEADER, *csv_rows(rec)], ",")
    if fmt == "table":
        return _table([RAVEN_HEADER, *raven_rows(rec, params)], "\t")
    if fmt == "audacity":
        return _table(audacity_rows(rec), "\t")
    if fmt == "kaleidoscope":
        return _table([KALEIDOSCOPE_HEADER, *kaleidoscope_rows(rec, params)], ",")
    raise ValueError(f"unknown format {fmt!r}")


def write_recording(
    base: Path, formats: Sequence[str], rec: RecordingDetections, params: AnalysisParams
) -> list[Path]:
    """Write one recording's detections; ``base`` is the output path without suffix."""
    written = []
    for fmt in formats:
        path = base.with_name(base.name + SUFFIX[fmt])
        atomic_write_text(path, render(fmt, rec, params))
        written.append(path)
    return written


def write_combined(
    out_dir: Path,
    formats: Sequence[str],
    recs: Sequence[RecordingDetections],
    params: AnalysisParams,
) -> list[Path]:
    """The run-level tables over all recordings (Raven times run on, file after file)."""
    written = []
    if "csv" in formats:
        rows = [CSV_HEADER] + [row for rec in recs for row in csv_rows(rec)]
        written.append(_write(out_dir / COMBINED["csv"], _table(rows, ",")))
    if "table" in formats:
        rows, offset = [RAVEN_HEADER], 0.0
        for rec in recs:
            rows += raven_rows(rec, params, first_id=len(rows), offset_s=offset, nocall=False)
            offset += rec.duration_s
        written.append(_write(out_dir / COMBINED["table"], _table(rows, "\t")))
    if "kaleidoscope" in formats:
        rows = [KALEIDOSCOPE_HEADER] + [r for rec in recs for r in kaleidoscope_rows(rec, params)]
        written.append(_write(out_dir / COMBINED["kaleidoscope"], _table(rows, ",")))
    return written


def _write(path: Path, text: str) -> Path:
    atomic_write_text(path, text)
    return path
