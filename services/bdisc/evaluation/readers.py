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
import math
from collections.abc import Iterable
from pathlib import Path

from bdisc.errors import ConfigError
from bdisc.evaluation.records import Annotation, Detection, recording_name
from bdisc.evaluation.species_map import SpeciesMap
from bdisc.interop.analyzer_results import Row, pick, read_table, result_rows, table_files

# birdnet-discovery's table writes "no species" as nan; it is kept as a class of its own
# (the published metrics list it), and excluded from averages by the non-target rule.
NO_SPECIES = "nan"


def is_performance_table(cols: list[str]) -> bool:
    return {"filename", "manSp"} <= set(cols) or {"filename", "netSp", "conf"} <= set(cols)


def _label(scientific: str, common: str, smap: SpeciesMap) -> str:
    if not common or scientific == common:
        return smap.code(scientific)
    return smap.code(f"{scientific}_{common}")


def read_detections(paths: Iterable[Path], smap: SpeciesMap) -> list[Detection]:
    found: list[Detection] = []
    for path in table_files(paths):
        cols, rows = read_table(path)
        if not cols:
            continue
        if is_performance_table(cols):
            found += performance_detections(rows, smap)
            continue
        for r in result_rows(path, cols, rows):
            species = _label(r.scientific, r.common, smap) if r.scientific else smap.code(r.common)
            name = recording_name(r.file or path.name)
            found.append(Detection(name, species, r.score, r.start_s, r.end_s))
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
    for path in table_files(paths):
        cols, rows = read_table(path)
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
        rec = pick(cols, "recording", "file", "filename", "IN FILE", "Begin File", "Begin Path")
        sp = pick(
            cols, "species", "label", "MANUAL ID", "Species Code", "Common Name", "Species", "name"
        )
        minute = pick(cols, "minute")
        start = pick(cols, "start", "start_s", "Begin Time (s)", "OFFSET", "start.time")
        end = pick(cols, "end", "end_s", "End Time (s)", "end.time")
        dur = pick(cols, "DURATION", "duration")
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
