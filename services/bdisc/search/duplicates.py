"""Recordings, or long stretches of them, that are the same audio under two names.

- **recording**: two recordings of the same duration (within one window) whose first N
  windows are, window by window, at near-zero cosine distance (the idea of HawkEars'
  ``find_dup_recordings``);
- **stretch**: N or more consecutive windows of recording A whose nearest neighbours are
  consecutive windows of recording B at near-zero distance (a copy, or one recording cut
  out of another). Copies are found where the windows of both fall on the same audio,
  i.e. where the copied stretch starts on a window boundary of both; a copy shifted by a
  fraction of the window step gives distances of 0.05 and more, not duplicates.

Candidates come from the window index (each window's nearest neighbours); the evidence
(every distance reported) is recomputed exactly from the stored embeddings. Windows of
digital silence (and nearly so) are left out: silence matches silence everywhere.
Nothing is ever deleted; ``exclusions`` lists the second of each pair for discovery.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bdisc.errors import ConfigError
from bdisc.logs import fields
from bdisc.search.manifest import FileEntry
from bdisc.search.stored_windows import StoredWindows, read_windows
from bdisc.search.window_index import WindowIndex, unit_rows

log = logging.getLogger(__name__)

RECORDING, STRETCH = "recording", "stretch"
# A run of matched windows may skip this many windows the approximate search missed.
MAX_GAP = 1


@dataclass(frozen=True)
class DuplicateParams:
    min_windows: int = 5
    max_distance: float = 0.02
    neighbours: int = 10  # nearest windows looked at per window
    silence_db: float = -100.0  # windows at or below this level are no evidence

    def __post_init__(self) -> None:
        if self.min_windows < 1:
            raise ConfigError(f"--min-windows must be >= 1, got {self.min_windows}")
        if not 0 <= self.max_distance < 1:
            raise ConfigError(f"--max-distance must be in [0, 1), got {self.max_distance}")
        if self.neighbours < 1:
            raise ConfigError(f"neighbours must be >= 1, got {self.neighbours}")


@dataclass(frozen=True)
class Duplicate:
    recording_a: str  # the one kept (first by name)
    recording_b: str  # the copy
    kind: str  # RECORDING or STRETCH
    start_a_s: float
    end_a_s: float
    start_b_s: float
    end_b_s: float
    windows: int  # windows matched (at most max_distance apart)
    max_distance: float  # the largest cosine distance of those windows


@dataclass(frozen=True)
class Exclusion:
    """A span discovery can leave out: the copy side of a duplicate."""

    recording: str
    start_s: float
    end_s: float
    kind: str
    duplicate_of: str


def find_duplicates(index: WindowIndex, params: DuplicateParams) -> list[Duplicate]:
    files = index.manifest.files
    read = functools.lru_cache(maxsize=16)(
        lambda i: read_windows(index.embeddings_folder / files[i].path)
    )
    pairs = _candidate_pairs(index, params, read)
    window_s = float(index.provenance.get("window_s", 3.0)) * float(
        index.provenance.get("audio_speed", 1.0)
    )
    found: list[Duplicate] = []
    for (fa, fb), matched in sorted(pairs.items()):
        a, b = read(fa), read(fb)
        whole = _whole(a, b, files[fa], files[fb], window_s, params)
        if whole is not None:
            found.append(whole)
            continue
        found += _stretches(a, b, matched, params)
    log.info(
        "duplicates found",
        extra=fields(
            recordings=sum(d.kind == RECORDING for d in found),
            stretches=sum(d.kind == STRETCH for d in found),
            pairs_looked_at=len(pairs),
        ),
    )
    return sorted(found, key=lambda d: (d.recording_a, d.recording_b, d.start_a_s, d.start_b_s))


def _candidate_pairs(
    index: WindowIndex, params: DuplicateParams, read: functools._lru_cache_wrapper[StoredWindows]
) -> dict[tuple[int, int], set[tuple[int, int]]]:
    """(file a, file b) -> window pairs (i in a, j in b) within max_distance."""
    files = index.manifest.files
    firsts = np.array([f.first_id for f in files], dtype=np.int64)
    loud = index.table.rms_dbfs > params.silence_db
    # Keyed (first by recording name, second): the first is the one kept.
    pairs: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)
    for fa, entry in enumerate(files):
        if entry.count == 0:
            continue
        w = read(fa)
        ids, dist = index.search(w.vectors, params.neighbours + 1)
        for i in range(len(w)):
            if not loud[entry.first_id + i]:
                continue
            near = ids[i][(ids[i] >= 0) & (dist[i] <= params.max_distance)]
            for other in near.tolist():
                fb = int(np.searchsorted(firsts, other, side="right") - 1)
                if fb == fa or not loud[other] or files[fb].recording == entry.recording:
                    continue
                j = other - files[fb].first_id
                if (entry.recording, fa) < (files[fb].recording, fb):
                    pairs[(fa, fb)].add((i, j))
                else:
                    pairs[(fb, fa)].add((j, i))
    return pairs


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row: 1 - cos(a[k], b[k])."""
    return np.asarray(1.0 - np.sum(unit_rows(a) * unit_rows(b), axis=1), dtype=np.float64)


def _whole(
    a: StoredWindows,
    b: StoredWindows,
    ea: FileEntry,
    eb: FileEntry,
    window_s: float,
    params: DuplicateParams,
) -> Duplicate | None:
    """The pair as one recording twice: same duration, first N windows the same."""
    if abs(ea.duration_s - eb.duration_s) > window_s:
        return None
    n = min(params.min_windows, len(a), len(b))
    loud = (a.rms_dbfs[:n] > params.silence_db) & (b.rms_dbfs[:n] > params.silence_db)
    if n == 0 or not loud.any():
        return None
    d = cosine_distances(a.vectors[:n], b.vectors[:n])[loud]
    if float(d.max()) > params.max_distance:
        return None
    return Duplicate(
        ea.recording,
        eb.recording,
        RECORDING,
        0.0,
        ea.duration_s,
        0.0,
        eb.duration_s,
        int(loud.sum()),
        round(max(0.0, float(d.max())), 6),
    )


def _stretches(
    a: StoredWindows, b: StoredWindows, matched: set[tuple[int, int]], params: DuplicateParams
) -> list[Duplicate]:
    """Runs of matched windows on one diagonal (j - i constant: consecutive windows of a
    matched to consecutive windows of b), at least min_windows long."""
    by_offset: dict[int, list[int]] = defaultdict(list)
    for i, j in matched:
        by_offset[j - i].append(i)
    found = []
    for offset, starts in by_offset.items():
        for run in _runs(sorted(starts)):
            i0, i1 = run[0], run[-1]
            aligned = np.arange(i0, i1 + 1)
            loud = (a.rms_dbfs[aligned] > params.silence_db) & (
                b.rms_dbfs[aligned + offset] > params.silence_db
            )
            d = cosine_distances(a.vectors[aligned], b.vectors[aligned + offset])[loud]
            close = d[d <= params.max_distance]
            if close.size < params.min_windows:
                continue
            found.append(
                Duplicate(
                    a.recording,
                    b.recording,
                    STRETCH,
                    float(a.start_s[i0]),
                    float(a.end_s[i1]),
                    float(b.start_s[i0 + offset]),
                    float(b.end_s[i1 + offset]),
                    int(close.size),
                    round(max(0.0, float(close.max())), 6),
                )
            )
    return found


def _runs(indices: list[int]) -> list[list[int]]:
    """Sorted window indices cut where more than MAX_GAP windows in a row are missing."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i - runs[-1][-1] <= MAX_GAP + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def exclusions(duplicates: list[Duplicate]) -> list[Exclusion]:
    """The copy side of every duplicate, once each: a copied recording whole, and the
    copied stretches of recordings not left out whole."""
    whole = {d.recording_b for d in duplicates if d.kind == RECORDING}
    seen: dict[tuple[str, float, float], Exclusion] = {}
    for d in duplicates:
        if d.kind == STRETCH and d.recording_b in whole:
            continue  # the whole recording is left out already
        key = (d.recording_b, d.start_b_s, d.end_b_s)
        seen.setdefault(
            key, Exclusion(d.recording_b, d.start_b_s, d.end_b_s, d.kind, d.recording_a)
        )
    return sorted(seen.values(), key=lambda e: (e.recording, e.start_s))
