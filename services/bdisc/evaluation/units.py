"""What is being judged: files, windows, minutes or sounds, each with truth and score per species.

file    a species is present in a recording if any annotation says so; its score is the
        best detection anywhere in the recording (the paper's evaluation).
window  the detection windows of each recording (plus a grid of ``window_s`` every
        ``step_s`` up to the last annotation or detection); a species is true in a window
        when an annotation overlaps it by ``min_overlap_s`` (or lies wholly inside it).
minute  one unit per minute of each recording; true when an annotation overlaps it.
sound   every annotated sound is a unit: found when a detection of its species overlaps
        it. Detections that overlap no sound of their species are the false positives.
Recordings are those of the truth; detections of other recordings are counted, not used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bdisc.errors import ConfigError
from bdisc.evaluation.records import Annotation, Detection

GRANULARITIES = ("file", "window", "sound", "minute")


@dataclass(frozen=True)
class UnitOptions:
    window_s: float = 3.0
    step_s: float | None = None  # None: from the detections (most common start gap), else 3.0
    min_overlap_s: float = 0.5


@dataclass
class UnitTable:
    granularity: str
    species: list[str]
    units: list[tuple[object, ...]]
    truth: np.ndarray  # bool (U, S)
    score: np.ndarray  # float (U, S); -inf = no detection
    # sound granularity only: per species, (scores of false detections,) for precision
    false_detections: dict[str, np.ndarray] | None = None
    ignored_detections: int = 0


def _has_times(a: Annotation) -> bool:
    return a.start_s is not None and a.end_s is not None


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def build(
    granularity: str,
    truth: Sequence[Annotation],
    recordings: set[str],
    detections: Sequence[Detection],
    options: UnitOptions = UnitOptions(),
) -> UnitTable:
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    species = sorted(
        {a.species for a in truth} | {d.species for d in detections if d.recording in recordings},
        key=str.casefold,
    )
    used = [d for d in detections if d.recording in recordings]
    ignored = len(detections) - len(used)
    if granularity == "file":
        return _file_units(species, truth, recordings, used, ignored)
    if any(not _has_times(a) for a in truth):
        raise ConfigError(
            f"{granularity} evaluation needs time-stamped annotations; "
            "this truth has file-level labels only"
        )
    if any(d.start_s is None or d.end_s is None for d in used):
        raise ConfigError(f"{granularity} evaluation needs detections with times")
    if granularity == "sound":
        return _sound_units(species, truth, used, ignored)
    return _time_units(granularity, species, truth, recordings, used, options, ignored)


def _file_units(
    species: list[str],
    truth: Sequence[Annotation],
    recordings: set[str],
    dets: Sequence[Detection],
    ignored: int,
) -> UnitTable:
    units = sorted(recordings)
    u_index = {u: i for i, u in enumerate(units)}
    s_index = {s: j for j, s in enumerate(species)}
    t = np.zeros((len(units), len(species)), dtype=bool)
    score = np.full((len(units), len(species)), -np.inf)
    for a in truth:
        t[u_index[a.recording], s_index[a.species]] = True
    for d in dets:
        i, j = u_index[d.recording], s_index[d.species]
        score[i, j] = max(score[i, j], d.score)
    return UnitTable("file", species, [(u,) for u in units], t, score, ignored_detections=ignored)


def _infer_step(dets: Sequence[Detection]) -> float:
    starts: dict[str, list[float]] = defaultdict(list)
    for d in dets:
        starts[d.recording].append(float(d.start_s or 0.0))
    gaps: dict[float, int] = defaultdict(int)
    for values in starts.values():
        v = np.unique(np.round(values, 3))
        for g in np.round(np.diff(v), 3):
            gaps[float(g)] += 1
    return min(gaps, key=lambda g: (-gaps[g], g)) if gaps else 3.0


def _time_units(
    granularity: str,
    species: list[str],
    truth: Sequence[Annotation],
    recordings: set[str],
    dets: Sequence[Detection],
    options: UnitOptions,
    ignored: int,
) -> UnitTable:
    length = 60.0 if granularity == "minute" else options.window_s
    step = 60.0 if granularity == "minute" else (options.step_s or _infer_step(dets))
    extent: dict[str, float] = defaultdict(float)
    for a in truth:
        extent[a.recording] = max(extent[a.recording], float(a.end_s or 0.0))
    for d in dets:
        extent[d.recording] = max(extent[d.recording], float(d.end_s or 0.0))
    starts: dict[str, set[float]] = defaultdict(set)
    for rec in recordings:
        n = max(1, math.ceil(max(0.0, extent[rec] - length) / step + 1e-9) + 1)
        starts[rec] |= {round(k * step, 3) for k in range(n)}
    if granularity == "window":
        for d in dets:
            starts[d.recording].add(round(float(d.start_s or 0.0), 3))
    units = [(rec, s, round(s + length, 3)) for rec in sorted(starts) for s in sorted(starts[rec])]
    index = {(u[0], u[1]): i for i, u in enumerate(units)}
    by_rec: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(units):
        by_rec[str(u[0])].append(i)
    s_index = {s: j for j, s in enumerate(species)}
    t = np.zeros((len(units), len(species)), dtype=bool)
    score = np.full((len(units), len(species)), -np.inf)
    for a in truth:
        a0, a1 = float(a.start_s or 0.0), float(a.end_s or 0.0)
        need = min(options.min_overlap_s, a1 - a0) if granularity == "window" else 1e-9
        for i in by_rec[a.recording]:
            _, u0, u1 = units[i]
            if _overlap(a0, a1, float(u0), float(u1)) >= max(need, 1e-9):  # type: ignore[arg-type]
                t[i, s_index[a.species]] = True
    for d in dets:
        j = s_index[d.species]
        if granularity == "window":
            hits = [index[(d.recording, round(float(d.start_s or 0.0), 3))]]
        else:
            minute = int(float(d.start_s or 0.0) // 60.0)
            hits = [index[(d.recording, round(minute * 60.0, 3))]]
        for i in hits:
            score[i, j] = max(score[i, j], d.score)
    return UnitTable(granularity, species, list(units), t, score, ignored_detections=ignored)


def _sound_units(
    species: list[str], truth: Sequence[Annotation], dets: Sequence[Detection], ignored: int
) -> UnitTable:
    s_index = {s: j for j, s in enumerate(species)}
    sounds = sorted(truth, key=lambda a: (a.recording, a.start_s or 0.0, a.species))
    t = np.zeros((len(sounds), len(species)), dtype=bool)
    score = np.full((len(sounds), len(species)), -np.inf)
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, a in enumerate(sounds):
        t[i, s_index[a.species]] = True
        by_key[(a.recording, a.species)].append(i)
    false: dict[str, list[float]] = defaultdict(list)
    for d in dets:
        hit = False
        for i in by_key.get((d.recording, d.species), []):
            a = sounds[i]
            if (
                _overlap(
                    float(a.start_s or 0.0),
                    float(a.end_s or 0.0),
                    float(d.start_s or 0.0),
                    float(d.end_s or 0.0),
                )
                > 0
            ):
                score[i, s_index[d.species]] = max(score[i, s_index[d.species]], d.score)
                hit = True
        if not hit:
            false[d.species].append(d.score)
    units = [(a.recording, a.start_s, a.end_s, a.species) for a in sounds]
    return UnitTable(
        "sound",
        species,
        list(units),
        t,
        score,
        false_detections={k: np.array(v) for k, v in false.items()},
        ignored_detections=ignored,
    )
