"""BirdNET-Analyzer's result tables, read back: its CSV (``.BirdNET.results.csv``, per file
or combined, with or without the ``File`` column), its older R-style table
(``filepath,start,end,...``), Raven selection tables and Kaleidoscope CSV. The kind of
each file is recognised by its columns; tab- or comma-separated, plain or gzipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bdisc.errors import ConfigError, NotFound, TooLarge

Row = dict[str, str]

# What BirdNET-Analyzer appends to a recording's stem for each kind of table.
TABLE_SUFFIXES = (
    ".BirdNET.results.csv",
    ".BirdNET.selection.table.txt",
    ".BirdNET.results.kaleidoscope.csv",
    ".BirdNET.results.r.csv",
    ".BirdNET.results.txt",
)


@dataclass(frozen=True)
class ResultRow:
    """One detection of a result table."""

    file: str  # the recording as the table names it ("" when it has no such column)
    table: str  # the table's own path (a per-recording table is named after its recording)
    scientific: str  # "" when the table gives only a common name or a code
    common: str
    score: float
    start_s: float
    end_s: float


# What one table may hold once decompressed, and its rows: a 10-MB gzip bomb must not
# take a worker's memory (the largest real table here is 4.5 MB and 64,000 rows).
MAX_TABLE_BYTES = 512 << 20
MAX_TABLE_ROWS = 5_000_000


class _Capped(io.RawIOBase):
    """A binary stream that refuses to yield more than ``limit`` bytes (TooLarge)."""

    def __init__(self, inner: Any, limit: int, name: str) -> None:
        self.inner, self.limit, self.name, self.count = inner, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge(f"{self.name}: more than {self.limit} bytes once decompressed")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def open_table(path: Path, limit: int = MAX_TABLE_BYTES) -> IO[str]:
    """The table as text (gzipped or not), at most ``limit`` bytes of it."""
    # the returned text stream owns (and closes) the file it opens
    raw: Any = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
    capped = io.BufferedReader(_Capped(raw, limit, path.name))
    return io.TextIOWrapper(capped, encoding="utf-8-sig", newline="")


def read_table(
    path: Path, limit: int = MAX_TABLE_BYTES, max_rows: int = MAX_TABLE_ROWS
) -> tuple[list[str], list[Row]]:
    """(columns, rows) of a comma- or tab-separated table; TooLarge past the caps."""
    with open_table(path, limit) as f:
        head = f.readline()
        delimiter = "\t" if head.count("\t") > head.count(",") else ","
        reader = csv.DictReader(itertools.chain([head], f), delimiter=delimiter)
        rows: list[Row] = []
        for r in reader:
            if len(rows) >= max_rows:
                raise TooLarge(f"{path.name}: more than {max_rows} rows")
            rows.append({(k or "").strip(): (v or "").strip() for k, v in r.items()})
        return [c.strip() for c in reader.fieldnames or []], rows


def table_files(paths: Iterable[Path]) -> list[Path]:
    """The tables among ``paths`` (folders are searched recursively)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.name.lower().endswith((".csv", ".txt", ".csv.gz", ".txt.gz"))
                and not f.name.startswith(".")
            )
        elif p.is_file():
            out.append(p)
        else:
            raise NotFound(f"no such file or folder: {p}", path=str(p))
    return out


def pick(cols: list[str], *names: str) -> str | None:
    """The first of ``names`` among the columns (case-insensitive)."""
    lower = {c.casefold(): c for c in cols}
    return next((lower[n.casefold()] for n in names if n.casefold() in lower), None)


def recording_of(row: ResultRow) -> str:
    """The recording a row is about: its File column, else its table's name without
    BirdNET-Analyzer's suffix (``site/rec.BirdNET.results.csv`` -> ``site/rec``)."""
    return row.file or table_stem(Path(row.table))


def table_stem(path: Path) -> str:
    """A per-recording table's recording: its name without BirdNET-Analyzer's suffix."""
    name = path.name.removesuffix(".gz")
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix):
            return str(path.with_name(name.removesuffix(suffix)))
    return str(path.with_name(name.rsplit(".", 1)[0]))


def result_rows(path: Path, cols: list[str], rows: list[Row]) -> list[ResultRow]:
    """The detections of one table; raises ConfigError if it is no detections table."""
    start = pick(cols, "Start (s)", "start", "Begin Time (s)", "OFFSET")
    end = pick(cols, "End (s)", "end", "End Time (s)")
    dur = pick(cols, "DURATION")
    conf = pick(cols, "Confidence", "confidence")
    sci = pick(cols, "Scientific name", "scientific_name", "Species Code")
    common = pick(cols, "Common name", ";Common name", "common_name", "Common Name")
    rec = pick(cols, "File", "filepath", "Begin Path", "Begin File", "IN FILE")
    folders = [pick(cols, "INDIR"), pick(cols, "FOLDER")] if rec == pick(cols, "IN FILE") else []
    if not (start and conf and (sci or common)):
        raise ConfigError(f"{path}: not a detections table I know (columns: {', '.join(cols)})")
    found = []
    for r in rows:
        if (common and r.get(common) == "nocall") or not r.get(conf):
            continue  # BirdNET-Analyzer's dummy line in empty Raven tables
        s = float(r[start])
        e = float(r[end]) if end else s + float(r[dur]) if dur else s + 3.0
        where = [r.get(c, "") for c in folders if c] + [r.get(rec, "") if rec else ""]
        found.append(
            ResultRow(
                # Kaleidoscope splits the path: INDIR, FOLDER and IN FILE
                file="/".join(w.rstrip("/") for w in where if w) if where[-1] else "",
                table=str(path),
                scientific=r.get(sci, "") if sci else "",
                common=r.get(common, "") if common else "",
                score=float(r[conf]),
                start_s=s,
                end_s=e,
            )
        )
    return found


def read_results(paths: Iterable[Path]) -> list[ResultRow]:
    """Every detection of every result table under ``paths``; other files are skipped
    (BirdNET-Analyzer's folders hold its settings and list files too)."""
    found: list[ResultRow] = []
    for path in table_files(paths):
        cols, rows = read_table(path)
        if cols and pick(cols, "Confidence", "confidence"):
            found += result_rows(path, cols, rows)
    return found
