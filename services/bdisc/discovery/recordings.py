"""Deployments, timestamps from file names, and subsetting before anything is computed.

A deployment ("Folder") is an immediate subfolder of the input root; recordings directly
in the root form a deployment named after the root. Recorders write their start time
into file names: ``20220606_160000.wav``, ``AL33_20230604_010000.wav``,
``S4A1234_20210601_053000+0100.flac``. Hours and dates filter on that clock time.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bdisc.audio.formats import iter_inputs
from bdisc.errors import ConfigError, NotFound

_STAMP = re.compile(
    r"(?<!\d)(\d{4})(\d{2})(\d{2})[_T-](\d{2})(\d{2})(\d{2})(Z|[+-]\d{2}:?\d{2})?(?!\d)"
)


def timestamp_from_name(name: str) -> datetime | None:
    """Start time written in a recorder's file name, or None; aware if it has an offset."""
    match = _STAMP.search(Path(name).stem)
    if not match:
        return None
    y, mo, d, h, mi, s, zone = match.groups()
    try:
        stamp = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError:
        return None
    if zone == "Z":
        return stamp.replace(tzinfo=UTC)
    if zone:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return stamp.replace(tzinfo=timezone(sign * offset))
    return stamp


@dataclass(frozen=True)
class Recording:
    path: Path  # absolute
    rel: str  # path relative to the input root, posix: how embeddings name the recording
    folder: str  # deployment name
    file: str  # path inside the deployment folder, posix
    timestamp: datetime | None


def find_recordings(root: Path) -> list[Recording]:
    if not root.is_dir():
        raise NotFound(f"not a folder of recordings: {root}", path=str(root))
    recordings = []
    for _, path in iter_inputs([root]):
        rel = path.relative_to(root)
        folder, file = (
            (rel.parts[0], Path(*rel.parts[1:]).as_posix())
            if len(rel.parts) > 1
            else (root.resolve().name, rel.as_posix())
        )
        recordings.append(
            Recording(path.absolute(), rel.as_posix(), folder, file, timestamp_from_name(path.name))
        )
    return recordings


def parse_hours(text: str) -> tuple[int, int]:
    """``6-9`` keeps 06:00 to 08:59; ``22-4`` wraps past midnight."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", text)
    if not match or not all(0 <= int(v) <= 24 for v in match.groups()):
        raise ConfigError(f"hours must look like 6-9 (start-end, 0-24), got {text!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if start == end:
        raise ConfigError(f"empty hour range {text!r}")
    return start, end


@dataclass(frozen=True)
class Subset:
    hours: tuple[int, int] | None = None
    start_date: date | None = None
    end_date: date | None = None  # inclusive
    sample: float | None = None  # fraction of recordings per deployment
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample is not None and not 0.0 < self.sample <= 1.0:
            raise ConfigError(f"sample fraction must be in (0, 1], got {self.sample}")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ConfigError("end date is before start date")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subset:
        """From JSON (an API request or a job's parameters): hours as ``"6-9"`` or
        ``[6, 9]``, dates as ``"2023-06-01"``; unknown keys are refused."""
        unknown = sorted(set(data) - {"hours", "start_date", "end_date", "sample", "seed"})
        if unknown:
            raise ConfigError(f"unknown subset parameters: {', '.join(unknown)}")
        hours = data.get("hours")
        if isinstance(hours, str):
            hours = parse_hours(hours)
        elif hours is not None:
            hours = parse_hours(f"{hours[0]}-{hours[1]}")

        def day(value: object) -> date | None:
            if value is None or isinstance(value, date):
                return value
            try:
                return date.fromisoformat(str(value))
            except ValueError as exc:
                raise ConfigError(f"dates look like 2023-06-01, got {value!r}") from exc

        return cls(
            hours=hours,
            start_date=day(data.get("start_date")),
            end_date=day(data.get("end_date")),
            sample=None if data.get("sample") is None else float(data["sample"]),
            seed=int(data.get("seed", 0)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "hours": list(self.hours) if self.hours else None,
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "sample": self.sample,
            "seed": self.seed,
        }

    @property
    def uses_time(self) -> bool:
        return self.hours is not None or self.start_date is not None or self.end_date is not None

    def _in_time(self, stamp: datetime) -> bool:
        if self.start_date and stamp.date() < self.start_date:
            return False
        if self.end_date and stamp.date() > self.end_date:
            return False
        if self.hours is not None:
            start, end = self.hours
            hour = stamp.hour
            return start <= hour < end if start < end else hour >= start or hour < end
        return True


@dataclass
class SubsetReport:
    found: int = 0
    no_timestamp: int = 0
    outside_time: int = 0
    not_sampled: int = 0
    kept: int = 0
    skipped_files: list[str] = field(default_factory=list)


def select(recordings: Sequence[Recording], subset: Subset) -> tuple[list[Recording], SubsetReport]:
    report = SubsetReport(found=len(recordings))
    kept: list[Recording] = []
    for rec in recordings:
        if subset.uses_time:
            if rec.timestamp is None:
                report.no_timestamp += 1
                report.skipped_files.append(rec.rel)
                continue
            if not subset._in_time(rec.timestamp):
                report.outside_time += 1
                continue
        kept.append(rec)
    if subset.sample is not None:
        rng = random.Random(subset.seed)
        by_folder: dict[str, list[Recording]] = defaultdict(list)
        for rec in kept:
            by_folder[rec.folder].append(rec)
        sampled = []
        for folder in sorted(by_folder):
            group = by_folder[folder]
            n = max(1, round(len(group) * subset.sample))
            sampled += sorted(rng.sample(group, n), key=lambda r: r.rel)
        report.not_sampled = len(kept) - len(sampled)
        kept = sampled
    report.kept = len(kept)
    return kept, report
