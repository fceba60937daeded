"""Per-recording outcomes, the run summary, and the reports written next to the results."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bdisc.fsutil import atomic_write_text

ERRORS_FILE = "errors.csv"
SUMMARY_FILE = "run_summary.json"


@dataclass
class FileOutcome:
    path: str
    rel: str
    status: str = "pending"  # done | skipped | failed
    duration_s: float = 0.0
    windows: int = 0
    content_hash: str = ""
    error: str = ""
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)  # the files it wrote (or had written)


@dataclass(frozen=True)
class RunSummary:
    job: str
    recordings: int
    done: int
    skipped: int
    failed: int
    warnings: int
    windows: int
    windows_computed: int
    audio_s: float
    audio_s_computed: float
    wall_s: float

    @property
    def windows_per_s(self) -> float:
        return self.windows_computed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        return self.audio_s_computed / self.wall_s if self.wall_s > 0 else 0.0

    @classmethod
    def of(cls, job: str, outcomes: Sequence[FileOutcome], wall_s: float) -> RunSummary:
        done = [o for o in outcomes if o.status == "done"]
        ok = [o for o in outcomes if o.status in ("done", "skipped")]
        return cls(
            job=job,
            recordings=len(outcomes),
            done=len(done),
            skipped=sum(o.status == "skipped" for o in outcomes),
            failed=sum(o.status == "failed" for o in outcomes),
            warnings=sum(len(o.warnings) for o in outcomes),
            windows=sum(o.windows for o in ok),
            windows_computed=sum(o.windows for o in done),
            audio_s=round(sum(o.duration_s for o in ok), 3),
            audio_s_computed=round(sum(o.duration_s for o in done), 3),
            wall_s=round(wall_s, 3),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "windows_per_s": round(self.windows_per_s, 2),
            "realtime_factor": round(self.realtime_factor, 1),
        }


def write_reports(
    out_dir: Path, job: str, summary: RunSummary, outcomes: Sequence[FileOutcome]
) -> None:
    """``errors.csv`` (every failure and warning of this run) and ``run_summary.json``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "severity", "error", "message"])
    for o in outcomes:
        if o.status == "failed":
            writer.writerow([o.path, "error", o.error, o.message])
        for w in o.warnings:
            writer.writerow([o.path, "warning", w.split(":", 1)[0], w])
    atomic_write_text(out_dir / ERRORS_FILE, buf.getvalue())
    atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(summary.as_dict(), indent=2) + "\n")
