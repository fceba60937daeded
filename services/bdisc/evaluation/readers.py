"""Read detections and ground truth from the tables people and tools actually write.

Detections: BirdNET-Analyzer CSV (``.BirdNET.results.csv``, per file or combined, with or
without the ``File`` column), its older R-style table (``filepath,start,end,...``), Raven
selection tables, Kaleidoscope CSV, and birdnet-discovery's per-file table
(``performance_data.csv``: ``netSp``/``conf``). Truth: that table's ``manSp``; time-stamped
annotations (``recording, species, start, end``), Raven tables, Kaleidoscope-style
``IN FILE, OFFSET, DURATION, MANUAL ID``; per-minute presence (``recording, minute, species``).
The kind of each file is recognised by its columns.
"""

from __future__ import annotations

import ast
import csv
import gzip
import math
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from bdisc.errors import ConfigError, NotFound
from bdisc.evaluation.records import Annotation, Detection, recording_name
from bdisc.evaluation.species_map import SpeciesMap

Row = dict[str, str]

# birdnet-discovery's table writes "no species" as nan; it is kept as a class of its own
# (the published metrics list it), and excluded from averages by the non-target rule.
NO_SPECIES = "nan"


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return path.open(newline="", encoding="utf-8-sig")


def _rows(path: Path) -> tuple[list[str], list[Row]]:
    with _open(path) as f:
        head = f.readline()
        f.seek(0)
        delimiter = "\t" if head.count("\t") > head.count(",") else ","
        reader = csv.DictReader(f, delimiter=delimiter)
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
        return [c.strip() for c in reader.fieldnames or []], rows


def _files(paths: Iterable[Path]) -> list[Path]:
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


def _pick(cols: list[str], *names: str) -> str | None:
    lower = {c.casefold(): c for c in cols}
    return next((lower[n.casefold()] for n in names if n.casefold() in lower), None)


def is_performance_table(cols: list[str]) -> bool:
    return {"filename", "manSp"} <= set(cols) or {"filename", "netSp", "conf"} <= set(cols)


def _label(scientific: str, common: str, smap: SpeciesMap) -> str:
    if not common or scientific == common:
        return smap.code(scientific)
    return smap.code(f"{scientific}_{common}")


def read_detections(paths: Iterable[Path], smap: SpeciesMap) -> list[Detection]:
    found: list[Detection] = []
    for path in _files(paths):
        cols, rows = _rows(path)
        if not cols:
            continue
        if is_performance_table(cols):
            found += performance_detections(rows, smap)
            continue
        start = _pick(cols, "Start (s)", "start", "Begin Time (s)", "OFFSET")
        end = _pick(cols, "End (s)", "end", "End Time (s)")
        dur = _pick(cols, "DURATION")
        conf = _pick(cols, "Confidence", "confidence")
        sci = _pick(cols, "Scientific name", "scientific_name", "Species Code")
        common = _pick(cols, "Common name", ";Common name", "common_name", "Common Name")
        rec = _pick(cols, "File", "filepath", "Begin Path", "Begin File", "IN FILE")
        if not (start and conf and (sci or common)):
            raise ConfigError(f"{path}: not a detections table I know (columns: {', '.join(cols)})")
        for r in rows:
            if (common and r.get(common) == "nocall") or not r.get(conf):
                continue  # BirdNET-Analyzer's dummy line in empty Raven tables
            s = float(r[start])
            e = float(r[end]) if end else s + float(r[dur]) if dur else s + 3.0
            species = (
                _label(r.get(sci, "") if sci else "", r.get(common, "") if common else "", smap)
                if sci
                else smap.code(r[common or ""])
            )
            name = recording_name(r[rec]) if rec and r.get(rec) else recording_name(path.name)
            found.append(Detection(name, species, float(r[conf]), s, e))
    return found


def performance_detections(rows: list[Row], smap: SpeciesMap) -> list[Detection]:
    """``netSp``/``conf`` of birdnet-discovery's per-file table (``nan`` = nothing found)."""
    out = []
    for r in rows:
        name = recording_name(r["filename"])
        species = [s.strip() for s in r.get("netSp", "").split(",")]
        scores = [c.strip() for c in r.get("conf", "").split(",")]
        for sp, sc in zip(species, scores, strict=False):
            if not sp or sp.casefold() == NO_SPECIES:
                out.append(Detection(name, NO_SPECIES, 1.0))
            else:
                out.append(Detection(name, smap.code(sp), float(sc)))
    return out


def _man_species(cell: str) -> set[str]:
    """``"['LALO', 'nan'] , ['DUNL', 'nan']"`` -> {"LALO", "nan", "DUNL"}."""
    try:
        parsed = ast.literal_eval(f"[{cell}]")
    except (ValueError, SyntaxError):
        parsed = [cell.split(",")]
    found: set[str] = set()
    stack = list(parsed)
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack += list(item)
        elif isinstance(item, float) and math.isnan(item):
            found.add(NO_SPECIES)
        elif str(item).strip():
            found.add(str(item).strip())
    return found


def read_truth(paths: Iterable[Path], smap: SpeciesMap) -> tuple[list[Annotation], set[str]]:
    """(annotations, recordings annotated): a recording with no annotation still counts."""
    out: list[Annotation] = []
    recordings: set[str] = set()
    for path in _files(paths):
        cols, rows = _rows(path)
        if not cols:
            continue
        if is_performance_table(cols):
            for r in rows:
                name = recording_name(r["filename"])
                recordings.add(name)
                out += [
                    Annotation(name, smap.code(s) if s.casefold() != NO_SPECIES else NO_SPECIES)
                    for s in _man_species(r["manSp"])
                ]
            continue
        rec = _pick(cols, "recording", "file", "filename", "IN FILE", "Begin File", "Begin Path")
        sp = _pick(
            cols, "species", "label", "MANUAL ID", "Species Code", "Common Name", "Species", "name"
        )
        minute = _pick(cols, "minute")
        start = _pick(cols, "start", "start_s", "Begin Time (s)", "OFFSET", "start.time")
        end = _pick(cols, "end", "end_s", "End Time (s)", "end.time")
        dur = _pick(cols, "DURATION", "duration")
        if not sp:
            raise ConfigError(
                f"{path}: no species column in truth table (columns: {', '.join(cols)})"
            )
        for r in rows:
            name = recording_name(r[rec]) if rec and r.get(rec) else recording_name(path.name)
            recordings.add(name)
            if not r.get(sp):
                continue
            if minute and r.get(minute):
                s: float | None = float(r[minute]) * 60.0
                e: float | None = (s or 0.0) + 60.0
            elif start and r.get(start):
                s = float(r[start])
                e = float(r[end]) if end and r.get(end) else s + float(r[dur]) if dur else s
            else:
                s = e = None
            out.append(Annotation(name, smap.code(r[sp]), s, e))
    return out, recordings
