"""What happens to one recording: decode, window, model, sink; resumable, never raises.

Shared by the local runner (``bdisc embed``/``analyze``, a process pool over many
recordings, in ``runner.py``) and the embedding service (one recording per message).
A long recording may instead go as parts (``parts.py``), each resumable on its own, and
then be assembled: ``run_unit`` does whichever a ``Unit`` asks.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bdisc.audio.reader import AudioInfo
from bdisc.errors import BdiscError, TooShort, describe
from bdisc.logs import fields
from bdisc.model.port import AcousticModel
from bdisc.params import AnalysisParams
from bdisc.pipeline.inference import ProgressFn, StreamStats, infer_recording, part_seconds
from bdisc.pipeline.jobs import FileContext, Job, part_path
from bdisc.pipeline.parts import Part
from bdisc.pipeline.resume import hash_file, load_state, save_state, state_path
from bdisc.pipeline.scoring import Scorer
from bdisc.pipeline.summary import FileOutcome

log = logging.getLogger(__name__)

ModelFactory = Callable[[int], AcousticModel]


@dataclass(frozen=True)
class RunConfig:
    out_dir: Path
    params: AnalysisParams
    workers: int = 1
    batch_size: int = 8
    force: bool = False
    progress: bool = True
    model_dir: Path | None = None
    # Long recordings go to the workers as parts (the results are the same either way).
    split_long: bool = True


@dataclass(frozen=True)
class FileTask:
    path: Path
    rel: Path
    info: AudioInfo
    known_hash: str | None


@dataclass
class ModelWorker:
    """What one process holds: the model and the scorer built from it (used by the runner's
    processes and by the embedding service's consumers alike)."""

    model: AcousticModel
    scorer: Scorer
    progress: Any = None  # multiprocessing queue of seconds done, in pool mode


def process_file(
    task: FileTask, job: Job, config: RunConfig, worker: ModelWorker, progress: ProgressFn | None
) -> FileOutcome:
    """Everything that happens to one recording; never raises."""
    outcome = FileOutcome(
        path=str(task.path), rel=task.rel.as_posix(), duration_s=task.info.duration_s
    )
    try:
        digest = task.known_hash or hash_file(task.path)
        outcome.content_hash = digest
        ctx = FileContext(
            task.info, task.rel, config.out_dir, digest, worker.model, worker.scorer, config.params
        )
        key = job.key(ctx)
        spath = state_path(config.out_dir, job.name, task.rel)
        state = None if config.force else load_state(spath, digest, key, config.out_dir)
        if state is not None:
            outcome.status, outcome.windows = "skipped", int(state["windows"])
            outcome.payload, outcome.warnings = state["payload"], list(state["warnings"])
            outcome.outputs = [config.out_dir / p for p in state.get("outputs", [])]
            if progress is not None:
                progress(task.info.duration_s)
            return outcome
        stats = StreamStats()
        sink = job.open(ctx)
        try:
            for batch in infer_recording(
                task.info, worker.model, config.params, config.batch_size, stats, progress
            ):
                sink.add(batch)
            if stats.windows == 0:
                raise TooShort(
                    f"recording is {task.info.duration_s:.2f} s, shorter than the minimum "
                    f"window length {config.params.min_len_s} s (see --min-len)",
                    path=str(task.path),
                )
            written, payload = sink.finish(stats)
        except BaseException:
            sink.abort()
            raise
        outcome.status, outcome.windows = "done", stats.windows
        outcome.payload, outcome.warnings = payload, stats.warnings
        outcome.outputs = list(written)
        _save_done(spath, config, digest, key, outcome, payload)
    except Exception as exc:
        if not isinstance(exc, BdiscError):
            log.exception("unexpected error", extra=fields(path=str(task.path)))
        outcome.status = "failed"
        outcome.error, outcome.message = describe(exc)
    return outcome


@dataclass(frozen=True)
class Unit:
    """One piece of work for a worker: a whole recording, one part of a long one, or the
    assembly of its finished parts."""

    task: FileTask
    part: Part | None = None
    parts: tuple[FileOutcome, ...] = ()  # to assemble, in order

    @property
    def name(self) -> str:
        if self.parts:
            return "assemble"
        return "whole" if self.part is None else f"part {self.part.key}"


def run_unit(
    unit: Unit, job: Job, config: RunConfig, worker: ModelWorker, progress: ProgressFn | None
) -> FileOutcome:
    if unit.parts:
        return assemble_parts(unit.task, unit.parts, job, config, worker)
    if unit.part is None:
        return process_file(unit.task, job, config, worker, progress)
    return process_part(unit.task, unit.part, job, config, worker, progress)


def _part_state(config: RunConfig, job: Job, task: FileTask, part: Part) -> Path:
    whole = state_path(config.out_dir, job.name, task.rel)
    return whole.with_name(whole.name.removesuffix(".json") + ".parts") / f"{part.key}.json"


def _context(task: FileTask, config: RunConfig, worker: ModelWorker, digest: str) -> FileContext:
    return FileContext(
        task.info, task.rel, config.out_dir, digest, worker.model, worker.scorer, config.params
    )


def process_part(
    task: FileTask,
    part: Part,
    job: Job,
    config: RunConfig,
    worker: ModelWorker,
    progress: ProgressFn | None,
    source: BinaryIO | None = None,
) -> FileOutcome:
    """One part of a long recording; never raises. Skipped when the whole recording is
    already done (``payload["whole"]``) or this part is."""
    outcome = FileOutcome(path=str(task.path), rel=task.rel.as_posix())
    spec = config.params.window_spec(worker.model.info.sample_rate, worker.model.info.window_s)
    span = part_seconds(part, spec, task.info.duration_s)
    outcome.duration_s = span[1] - span[0]
    try:
        digest = task.known_hash or hash_file(task.path)
        outcome.content_hash = digest
        ctx = _context(task, config, worker, digest)
        key = job.key(ctx)
        whole = None
        if not config.force:
            spath = state_path(config.out_dir, job.name, task.rel)
            whole = load_state(spath, digest, key, config.out_dir)
        ppath = _part_state(config, job, task, part)
        state = whole or (None if config.force else load_state(ppath, digest, key, config.out_dir))
        if state is not None:
            outcome.status, outcome.windows = "skipped", int(state["windows"])
            outcome.payload = {**state["payload"], "whole": whole is not None}
            outcome.warnings = list(state["warnings"])
            outcome.outputs = [config.out_dir / p for p in state.get("outputs", [])]
            if progress is not None:
                progress(outcome.duration_s)
            return outcome
        stats = StreamStats()
        sink = job.open_part(ctx, part.key)
        try:
            for batch in infer_recording(
                task.info,
                worker.model,
                config.params,
                config.batch_size,
                stats,
                progress,
                part,
                source,
            ):
                sink.add(batch)
            written, payload = sink.finish(stats)
        except BaseException:
            sink.abort()
            raise
        outcome.status, outcome.windows = "done", stats.windows
        outcome.payload, outcome.warnings = {**payload, "whole": False}, stats.warnings
        outcome.outputs = list(written)
        _save_done(ppath, config, digest, key, outcome, payload)
    except Exception as exc:
        if not isinstance(exc, BdiscError):
            log.exception("unexpected error", extra=fields(path=str(task.path), part=part.key))
        outcome.status = "failed"
        outcome.error, outcome.message = describe(exc)
    return outcome


def assemble_parts(
    task: FileTask,
    parts: tuple[FileOutcome, ...],
    job: Job,
    config: RunConfig,
    worker: ModelWorker,
) -> FileOutcome:
    """The recording's outputs and state from its finished parts; never raises."""
    outcome = FileOutcome(
        path=str(task.path), rel=task.rel.as_posix(), duration_s=task.info.duration_s
    )
    try:
        digest = parts[0].content_hash
        outcome.content_hash = digest
        ctx = _context(task, config, worker, digest)
        results = [(list(p.outputs), p.payload) for p in parts]
        written, payload = job.assemble(ctx, results)
        outcome.status = "done"
        outcome.windows = sum(p.windows for p in parts)
        outcome.warnings = [w for p in parts for w in p.warnings]
        outcome.payload, outcome.outputs = payload, list(written)
        spath = state_path(config.out_dir, job.name, task.rel)
        _save_done(spath, config, digest, job.key(ctx), outcome, payload)
        shutil.rmtree(_part_state(config, job, task, Part(0, 0)).parent, ignore_errors=True)
        _remove_empty(part_path(ctx, job.name, "-", "").parent, config.out_dir)
    except Exception as exc:
        if not isinstance(exc, BdiscError):
            log.exception("unexpected error", extra=fields(path=str(task.path), step="assemble"))
        outcome.status = "failed"
        outcome.error, outcome.message = describe(exc)
    return outcome


def _save_done(
    path: Path,
    config: RunConfig,
    digest: str,
    key: str,
    outcome: FileOutcome,
    payload: dict[str, Any],
) -> None:
    """The state record that lets a later run skip what ``outcome`` made."""
    save_state(
        path,
        {
            "content_hash": digest,
            "key": key,
            "windows": outcome.windows,
            "outputs": [p.relative_to(config.out_dir).as_posix() for p in outcome.outputs],
            "payload": payload,
            "warnings": outcome.warnings,
        },
    )


def _remove_empty(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents up to ``stop`` while they are empty."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
