"""Labels as data: what reviewers named, kept apart from the generated sheets, with every
change in the history and a revision per sheet for optimistic concurrency.

A label names a *target* of a job: a cluster of a deployment, a sound type of the job
(discovery links clusters across deployments), or one window (recording + start/end).
The labels of one deployment (its ``folder``; sound types: folder ``""``) form a sheet
with a revision number: every write names the revision it read and a stale write is
refused (``Conflict``: someone saved first). Re-clustering carries cluster labels to the
new clusters (``discovery/relabel.py``), recorded as a change like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bdisc.errors import ConfigError

TargetKind = Literal["cluster", "type", "window"]
SOURCES = ("cluster", "window", "suggested-accepted", "import", "carried", "undo")
JOB_LEVEL = ""  # the folder of job-wide targets (sound types)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    folder: str = JOB_LEVEL  # the deployment (clusters, windows)
    number: int = 0  # the cluster, or the sound type
    recording: str = ""  # windows: the recording's path below the project (north/r1.wav)
    start_s: float = 0.0
    end_s: float = 0.0

    @classmethod
    def cluster(cls, folder: str, cluster: int) -> Target:
        return cls("cluster", folder, cluster)

    @classmethod
    def sound_type(cls, type_id: int) -> Target:
        return cls("type", JOB_LEVEL, type_id)

    @classmethod
    def window(cls, folder: str, recording: str, start_s: float, end_s: float) -> Target:
        if not (recording and 0.0 <= start_s < end_s):
            raise ConfigError("a window names its recording and 0 <= start_s < end_s")
        return cls("window", folder, 0, recording, round(start_s, 3), round(end_s, 3))

    @property
    def key(self) -> str:
        """Its one text form (the stored key): ``cluster:3``, ``type:7``,
        ``window:north/r1.wav:12.000:15.000``; unique within its sheet."""
        if self.kind == "window":
            return f"window:{self.recording}:{self.start_s:.3f}:{self.end_s:.3f}"
        return f"{self.kind}:{self.number}"

    @classmethod
    def from_key(cls, folder: str, key: str) -> Target:
        kind, _, rest = key.partition(":")
        try:
            if kind == "window":
                recording, start, end = rest.rsplit(":", 2)
                return cls.window(folder, recording, float(start), float(end))
            if kind in ("cluster", "type"):
                return cls(kind, folder, int(rest))  # type: ignore[arg-type]
        except ValueError:
            pass
        raise ConfigError(f"not a label target: {key!r}")


@dataclass(frozen=True)
class Change:
    target: Target
    label: str  # "" removes the label


@dataclass(frozen=True)
class LabelRecord:
    """A target's label as of ``revision`` (in the history: ``previous`` is what it
    replaced, ``""`` for none; ``label`` ``""`` for a removal)."""

    job_id: str
    target: Target
    label: str
    author: str
    source: str
    revision: int
    at: datetime
    previous: str = ""


class LabelStore(Protocol):
    def labels(self, job_id: str, folder: str | None = None) -> list[LabelRecord]:
        """The current labels of a job (of one sheet when ``folder`` is given)."""
        ...

    def revision(self, job_id: str, folder: str) -> int:
        """The sheet's revision: 0 until its first write."""
        ...

    def write(
        self,
        job_id: str,
        folder: str,
        changes: Sequence[Change],
        author: str,
        source: str,
        expected: int | None,
    ) -> int:
        """Apply ``changes`` to the sheet as one new revision (returned). ``expected``:
        the revision the writer read (Conflict if it is not the current one); None
        writes whatever the revision (imports, the platform's own carrying)."""
        ...

    def history(self, job_id: str, folder: str) -> list[LabelRecord]:
        """Every change of the sheet, oldest first."""
        ...

    def undo(self, job_id: str, folder: str, author: str, expected: int | None) -> int:
        """Revert the sheet's latest revision that is not undone yet (as a new revision,
        source ``undo``); NotFound when there is nothing to undo."""
        ...
