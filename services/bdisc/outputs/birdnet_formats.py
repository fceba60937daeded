"""Detections in BirdNET-Analyzer's file formats, so tools that read those read ours.

Per recording: CSV (``.BirdNET.results.csv``), Raven selection table
(``.BirdNET.selection.table.txt``), Audacity labels (``.BirdNET.results.txt``) and
Kaleidoscope CSV (``.BirdNET.results.kaleidoscope.csv``). Per run: the combined tables
``BirdNET_CombinedTable.csv``, ``BirdNET_SelectionTable.txt`` and ``BirdNET_Kaleidoscope.csv``.
Column names, separators, number formats, eBird codes in Raven's "Species Code", the
order of rows, ``--merge_consecutive`` and ``--additional_columns`` follow BirdNET-Analyzer
2.4, so that its files and ours match cell by cell (paths aside).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bdisc.audio.bandpass import MODEL_FMAX, MODEL_FMIN
from bdisc.errors import ConfigError
from bdisc.fsutil import atomic_write_text
from bdisc.model.ebird_codes import species_code
from bdisc.model.labels import Label
from bdisc.outputs.merge_detections import Timed, merge_consecutive
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
RAVEN_LIST = "BirdNET_SelectionTable.list.txt"  # the recordings of the combined Raven table
PARAMS_FILE = "BirdNET_analysis_params.csv"
# BirdNET-Analyzer reads audio in blocks of this many seconds; bdisc streams whole files
# (so its windows at block edges hold real audio where BirdNET-Analyzer pads with zeros).
FILE_SPLITTING_S = 600
ADDITIONAL_COLUMNS = (
    "lat",
    "lon",
    "week",
    "overlap",
    "sensitivity",
    "min_conf",
    "species_list",
    "model",
)
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
    rows: Sequence[DetectionRow]  # window by window, best score first


@dataclass(frozen=True)
class Report:
    """How detections become files: the analysis parameters and BirdNET-Analyzer's
    output options."""

    params: AnalysisParams
    merge_consecutive: int = 1
    additional_columns: tuple[str, ...] = ()
    species_list_file: str = ""  # as the user named it (the species_list column)
    model_file: str = ""  # the model's file name (the model column)
    custom_classifier: str = ""  # a custom classifier's path (the params file names it)

    def __post_init__(self) -> None:
        if self.merge_consecutive < 0:
            raise ConfigError(f"merge-consecutive must be >= 0, got {self.merge_consecutive}")
        unknown = [c for c in self.additional_columns if c not in ADDITIONAL_COLUMNS]
        if unknown:
            raise ConfigError(
                f"unknown additional columns {', '.join(unknown)}; "
                f"choose from {', '.join(ADDITIONAL_COLUMNS)}"
            )

    def key(self) -> str:
        """What changes the files beyond the scores (for resume)."""
        columns = [c for c in ADDITIONAL_COLUMNS if c in self.additional_columns]
        return f"m{self.merge_consecutive}-" + ",".join(columns)

    def extra_values(self) -> list[str]:
        """The additional columns' cells, in BirdNET-Analyzer's column order."""
        p = self.params
        values = {
            "lat": str(p.lat) if p.lat is not None else "-1",
            "lon": str(p.lon) if p.lon is not None else "-1",
            "week": str(p.week),
            "overlap": str(float(p.overlap_s)),
            "sensitivity": str(float(p.sensitivity)),
            "min_conf": str(float(p.min_conf)),
            "species_list": self.species_list_file,
            "model": self.model_file,
        }
        return [values[c] for c in ADDITIONAL_COLUMNS if c in self.additional_columns]

    def extra_header(self) -> list[str]:
        return [c for c in ADDITIONAL_COLUMNS if c in self.additional_columns]


def fmt_time(seconds: float) -> str:
    """BirdNET-Analyzer's ``str(round(t, 2))``."""
    return str(round(float(seconds), 2))


def report_rows(rec: RecordingDetections, report: Report) -> list[DetectionRow]:
    """The rows as written: times at BirdNET-Analyzer's precision, then merged."""
    timed = [
        Timed(round(r.start_s, 2), round(r.end_s, 2), r.label.key, r.score, r.label)
        for r in rec.rows
    ]
    return [
        DetectionRow(t.start_s, t.end_s, t.item, t.score)
        for t in merge_consecutive(timed, report.merge_consecutive)
    ]


def _table(rows: list[list[str]], delimiter: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def csv_header(report: Report) -> list[str]:
    return CSV_HEADER + report.extra_header()


def csv_rows(rec: RecordingDetections, report: Report) -> list[list[str]]:
    extra = report.extra_values()
    return [
        [
            fmt_time(r.start_s),
            fmt_time(r.end_s),
            r.label.scientific,
            r.label.common,
            f"{r.score:.4f}",
            str(rec.source),
            *extra,
        ]
        for r in report_rows(rec, report)
    ]


def raven_band(rec: RecordingDetections, params: AnalysisParams) -> tuple[int, int]:
    """The Raven box in the recording's own frequencies (audio speed undone)."""
    speed = params.audio_speed
    high = min(rec.source_rate / 2, int(MODEL_FMAX / speed), int(params.bandpass.fmax / speed))
    return int(max(MODEL_FMIN, int(params.bandpass.fmin / speed))), int(high)


def raven_rows(rec: RecordingDetections, report: Report, nocall: bool = True) -> list[list[str]]:
    low, high = raven_band(rec, report.params)
    rows = [
        [
            str(1 + i),
            "Spectrogram 1",
            "1",
            fmt_time(r.start_s),
            fmt_time(r.end_s),
            str(low),
            str(high),
            r.label.common,
            species_code(r.label.key),
            f"{r.score:.4f}",
            str(rec.source),
            fmt_time(r.start_s),
        ]
        for i, r in enumerate(report_rows(rec, report))
    ]
    if not rows and nocall:
        # BirdNET-Analyzer writes one dummy line so that empty tables still combine.
        rows = [
            [
                "1",
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


def audacity_rows(rec: RecordingDetections, report: Report) -> list[list[str]]:
    return [
        [
            fmt_time(r.start_s),
            fmt_time(r.end_s),
            f"{r.label.scientific}, {r.label.common}",
            f"{r.score:.4f}",
        ]
        for r in report_rows(rec, report)
    ]


def kaleidoscope_rows(rec: RecordingDetections, report: Report) -> list[list[str]]:
    params = report.params
    folder = rec.source.parent
    lat = params.lat if params.lat is not None else -1.0
    lon = params.lon if params.lon is not None else -1.0
    return [
        [
            str(folder.parent).rstrip("/"),
            folder.name,
            rec.source.name,
            fmt_time(r.start_s),
            str(float(fmt_time(r.end_s)) - float(fmt_time(r.start_s))),
            r.label.scientific,
            r.label.common,
            f"{r.score:.4f}",
            f"{lat:.4f}",
            f"{lon:.4f}",
            str(params.week),
            str(float(params.overlap_s)),
            str(float(params.sensitivity)),
        ]
        for r in report_rows(rec, report)
    ]


def render(fmt: str, rec: RecordingDetections, report: Report) -> str:
    if fmt == "csv":
        return _table([csv_header(report), *csv_rows(rec, report)], ",")
    if fmt == "table":
        return _table([RAVEN_HEADER, *raven_rows(rec, report)], "\t")
    if fmt == "audacity":
        return _table(audacity_rows(rec, report), "\t")
    if fmt == "kaleidoscope":
        return _table([KALEIDOSCOPE_HEADER, *kaleidoscope_rows(rec, report)], ",")
    raise ValueError(f"unknown format {fmt!r}")


def write_recording(
    base: Path, formats: Sequence[str], rec: RecordingDetections, report: Report
) -> list[Path]:
    """Write one recording's detections; ``base`` is the output path without suffix."""
    written = []
    for fmt in formats:
        path = base.with_name(base.name + SUFFIX[fmt])
        atomic_write_text(path, render(fmt, rec, report))
        written.append(path)
    return written


def write_combined(
    out_dir: Path, formats: Sequence[str], recs: Sequence[RecordingDetections], report: Report
) -> list[Path]:
    """The run-level tables over all recordings (Raven times run on, file after file),
    and the settings file BirdNET-Analyzer writes beside them."""
    written = []
    if "csv" in formats:
        rows = [csv_header(report)] + [row for rec in recs for row in csv_rows(rec, report)]
        written.append(_write(out_dir / COMBINED["csv"], _table(rows, ",")))
    if "table" in formats:
        rows, offset = [RAVEN_HEADER], 0.0
        for rec in recs:
            for row in raven_rows(rec, report, nocall=False):
                # As BirdNET-Analyzer: ids run on, times are shifted by the durations so far.
                row[0] = str(len(rows))
                row[3] = str(float(row[3]) + offset)
                row[4] = str(float(row[4]) + offset)
                rows.append(row)
            offset += rec.duration_s
        written.append(_write(out_dir / COMBINED["table"], _table(rows, "\t")))
        listed = "".join(f"{rec.source}\n" for rec in recs)
        written.append(_write(out_dir / RAVEN_LIST, listed))
    if "kaleidoscope" in formats:
        rows = [KALEIDOSCOPE_HEADER] + [r for rec in recs for r in kaleidoscope_rows(rec, report)]
        written.append(_write(out_dir / COMBINED["kaleidoscope"], _table(rows, ",")))
    written.append(_write(out_dir / PARAMS_FILE, params_table(report)))
    return written


def params_table(report: Report) -> str:
    """BirdNET-Analyzer's ``BirdNET_analysis_params.csv`` (its csv module's CRLF lines)."""
    p = report.params
    header = [
        "File splitting duration",
        "Segment length",
        "Sample rate",
        "Segment overlap",
        "Minimum Segment length",
        "Bandpass filter minimum",
        "Bandpass filter maximum",
        "Merge consecutive detections",
        "Audio speed",
        "Custom classifier path",
    ]
    values = [
        str(FILE_SPLITTING_S),
        "3.0",
        "48000",
        str(float(p.overlap_s)),
        str(float(p.min_len_s)),
        _number(p.bandpass.fmin),
        _number(p.bandpass.fmax),
        str(report.merge_consecutive),
        str(float(p.audio_speed)),
        report.custom_classifier,
    ]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([header, values])
    return buf.getvalue()


def _number(value: float) -> str:
    """Band-pass limits as BirdNET-Analyzer's integers (15000, not 15000.0)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _write(path: Path, text: str) -> Path:
    atomic_write_text(path, text)
    return path
