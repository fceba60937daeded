"""A run's recordings as units of work: whole recordings, and long ones as parts followed
by their assembly. The coordinator hands out units and turns their outcomes into one
outcome per recording (in whatever order the units finish).

A long recording's parts run on any worker; once all are back it is assembled. It is
skipped when any part found the whole recording already done, fails with the first
failed part's error, and is processed whole when a part found the audio shorter than the
header said (the whole path handles a truncated file as it always has).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bdisc.errors import PartShort
from bdisc.model.birdnet import SAMPLE_RATE, WINDOW_S
from bdisc.params import AnalysisParams
from bdisc.pipeline.parts import WHOLE, Part, plan_parts
from bdisc.pipeline.recording_task import FileTask, Unit
from bdisc.pipeline.resume import hash_file
from bdisc.pipeline.summary import FileOutcome


@dataclass
class _Waiting:
    parts: list[Part]
    done: dict[str, FileOutcome] = field(default_factory=dict)


@dataclass
class Coordinator:
    params: AnalysisParams
    split_long: bool = True
    sample_rate: int = SAMPLE_RATE  # the model's (the main process loads no model)
    window_s: float = WINDOW_S
    waiting: dict[str, _Waiting] = field(default_factory=dict)

    def _parts(self, task: FileTask) -> list[Part]:
        if not self.split_long:
            return [WHOLE]
        spec = self.params.window_spec(self.sample_rate, self.window_s)
        return plan_parts(task.info, spec, self.params.audio_speed)

    def start(self, tasks: Sequence[FileTask]) -> list[Unit]:
        units: list[Unit] = []
        for task in tasks:
            parts = self._parts(task)
            if len(parts) == 1:
                units.append(Unit(task))
                continue
            # Hashed once here, not once per part.
            task = replace(task, known_hash=task.known_hash or hash_file(task.path))
            self.waiting[str(task.path)] = _Waiting(parts)
            units += [Unit(task, part) for part in parts]
        return units

    def finished(self, unit: Unit, outcome: FileOutcome) -> tuple[list[Unit], FileOutcome | None]:
        """(units to run next, the recording's outcome once it is known)."""
        if unit.part is None:  # a whole recording or an assembly: final
            return [], outcome
        wait = self.waiting[str(unit.task.path)]
        wait.done[unit.part.key] = outcome
        if len(wait.done) < len(wait.parts):
            return [], None
        del self.waiting[str(unit.task.path)]
        results = [wait.done[p.key] for p in wait.parts]
        whole = next((o for o in results if o.status == "skipped" and o.payload.get("whole")), None)
        if whole is not None:
            return [], replace(whole, duration_s=unit.task.info.duration_s)
        failed = [o for o in results if o.status == "failed"]
        if any(o.error == PartShort.__name__ for o in failed):
            return [Unit(unit.task)], None
        if failed:
            return [], replace(failed[0], duration_s=unit.task.info.duration_s)
        return [Unit(unit.task, parts=tuple(results))], None

    def units_of(self, tasks: Sequence[FileTask]) -> int:
        return sum(len(self._parts(t)) for t in tasks)
