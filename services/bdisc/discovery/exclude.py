"""Spans of recordings to leave out of a discovery: ``recording,start_s,end_s`` rows, as
``bdisc duplicates`` writes them in ``duplicates_exclude.csv`` (the second copy of the
same audio; a whole recording is 0 to its duration). ``recording`` is the recording's
path below the input folder, as the embeddings name it."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from bdisc.errors import ConfigError, NotFound

TOLERANCE_S = 0.01  # times in the file are rounded


def read_exclusions(path: Path) -> dict[str, list[tuple[float, float]]]:
    """recording -> its spans to leave out; ConfigError naming the file and row."""
    if not path.is_file():
        raise NotFound(f"exclusion list not found: {path}", path=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text", path=str(path)) from exc
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    reader = csv.DictReader(io.StringIO(text))
    missing = {"recording", "start_s", "end_s"} - set(reader.fieldnames or [])
    if missing:
        raise ConfigError(
            f"{path}: needs the columns recording, start_s, end_s (missing "
            f"{', '.join(sorted(missing))})",
            path=str(path),
        )
    for line, row in enumerate(reader, start=2):
        try:
            start, end = float(row["start_s"]), float(row["end_s"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}, line {line}: start_s and end_s are seconds") from exc
        if not (np.isfinite(start) and np.isfinite(end)) or end < start:
            raise ConfigError(f"{path}, line {line}: end_s must not be before start_s")
        spans[(row["recording"] or "").strip()].append((start, end))
    return dict(spans)


def excluded(
    recordings: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    spans: dict[str, list[tuple[float, float]]],
) -> np.ndarray:
    """Windows lying within a listed span of their recording."""
    out = np.zeros(len(recordings), dtype=bool)
    for i in np.flatnonzero([r in spans for r in recordings.tolist()]):
        out[i] = any(
            starts[i] >= a - TOLERANCE_S and ends[i] <= b + TOLERANCE_S
            for a, b in spans[str(recordings[i])]
        )
    return out
