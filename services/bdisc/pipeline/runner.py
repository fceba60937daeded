"""Run a job over many recordings: probe, resume, fan out to worker processes, report.

What happens to each recording is ``recording_task.process_file``; this module is the
local batch around it (collecting inputs, the process pool, progress bars, reports).
Long recordings go to the workers as parts (``units.py``), so one 2-hour file keeps every
core busy.

Bad input never stops a run: every recording ends as done, skipped (already computed
with the same content and parameters) or failed with a clear per-file error, listed in
``errors.csv``. Two recordings whose outputs would share names (``x.flac``, ``x.mp3``:
``outputs/names.py``) are never both run: the first is, the other fails with
``NameClash``. A worker process that dies takes only its recordings with it: they are
retried once in a fresh pool, then reported.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from bdisc.audio.formats import iter_inputs
from bdisc.audio.reader import probe
from bdisc.errors import InternalError, describe
from bdisc.logs import fields
from bdisc.outputs.names import name_clash, name_clashes
from bdisc.params import AnalysisParams
from bdisc.pipeline.jobs import Job
from bdisc.pipeline.recording_task import (
    FileTask,
    ModelFactory,
    ModelWorker,
    RunConfig,
    Unit,
    run_unit,
)
from bdisc.pipeline.resume import FileStamp, HashCache, forget_clashing
from bdisc.pipeline.scoring import Scorer
from bdisc.pipeline.summary import FileOutcome, RunSummary, write_reports
from bdisc.pipeline.units import Coordinator

log = logging.getLogger(__name__)

_worker: ModelWorker | None = None  # set once per worker process by _init_worker


def _init_worker(
    factory: ModelFactory,
    threads: int,
    params: AnalysisParams,
    model_dir: Path | None,
    progress: Any,
) -> None:
    global _worker
    model = factory(threads)
    _worker = ModelWorker(model, Scorer(params, model.labels, model_dir), progress)


def _pool_task(unit: Unit, job: Job, config: RunConfig) -> FileOutcome:
    worker = _worker
    if worker is None:
        raise InternalError("worker process was not initialised")
    q = worker.progress
    return run_unit(unit, job, config, worker, (lambda s: q.put(s)) if q else None)


def named_inputs(inputs: Sequence[Path], base: Path | None = None) -> list[tuple[Path, Path]]:
    """(absolute path, path relative to ``base``) of every recording under ``inputs``,
    each once (inputs may overlap); ``base`` defaults to the inputs' common folder."""
    found = list(iter_inputs(inputs))
    if not found:
        return []
    # abspath, not resolve: a symlinked recording keeps its place in the input tree.
    if base is None:
        base = Path(os.path.commonpath([os.path.abspath(root) for root, _ in found]))
    base = Path(os.path.abspath(base))
    named: dict[Path, Path] = {}
    for _, found_path in found:
        path = Path(os.path.abspath(found_path))
        named.setdefault(path, path.relative_to(base))
    return list(named.items())


def collect_tasks(
    named: Sequence[tuple[Path, Path]],
    cache: HashCache,
    failed: list[FileOutcome],
    clashes: dict[str, str],
) -> list[FileTask]:
    """Probe every recording (``named_inputs``); unreadable ones, and those refused
    because another owns their output names (``clashes``), go straight to ``failed``."""
    tasks = []
    for path, rel in named:
        try:
            kept = clashes.get(rel.as_posix())
            if kept is not None:
                raise name_clash(rel.as_posix(), kept)
            info = probe(path)
            stamp = FileStamp.of(path)
            tasks.append(FileTask(path, rel, info, cache.lookup(path, stamp)))
        except Exception as exc:
            kind, message = describe(exc)
            outcome = FileOutcome(
                path=str(path), rel=rel.as_posix(), status="failed", error=kind, message=message
            )
            failed.append(outcome)
            _log_outcome(outcome)
    return tasks


@dataclass
class _Progress:
    bar: Any
    done_s: float = 0.0
    outcomes: list[FileOutcome] = field(default_factory=list)

    def advance(self, seconds: float) -> None:
        self.done_s += seconds
        self.bar.update(seconds)


def run(
    inputs: Sequence[Path],
    job: Job,
    config: RunConfig,
    model_factory: ModelFactory,
    base: Path | None = None,
) -> tuple[RunSummary, list[FileOutcome]]:
    """Run ``job`` over every recording under ``inputs``; write reports into the out dir."""
    started = time.monotonic()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    cache = HashCache(config.out_dir)
    outcomes: list[FileOutcome] = []
    named = named_inputs(inputs, base)
    clashes = name_clashes(rel.as_posix() for _, rel in named)
    forget_clashing(config.out_dir, job.name, clashes)
    tasks = collect_tasks(named, cache, outcomes, clashes)
    total_s = sum(t.info.duration_s for t in tasks)
    coordinator = Coordinator(config.params, config.split_long)
    workers = max(1, min(config.workers, coordinator.units_of(tasks)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    log.info(
        "starting",
        extra=fields(
            job=job.name,
            recordings=len(tasks),
            audio_hours=round(total_s / 3600, 3),
            workers=workers,
            threads_per_worker=threads,
        ),
    )
    bar = tqdm(
        total=round(total_s, 1),
        unit="s",
        unit_scale=True,
        desc=job.name,
        disable=not config.progress,
        dynamic_ncols=True,
        bar_format=None,
    )
    tracker = _Progress(bar)
    with logging_redirect_tqdm(loggers=[logging.getLogger("bdisc")]), bar:
        if tasks and workers == 1:
            model = model_factory(threads)
            worker = ModelWorker(model, Scorer(config.params, model.labels, config.model_dir))
            todo = coordinator.start(tasks)
            while todo:
                unit = todo.pop(0)
                more, final = coordinator.finished(
                    unit, run_unit(unit, job, config, worker, tracker.advance)
                )
                todo = more + todo
                if final is not None:
                    tracker.outcomes.append(final)
                    _log_outcome(final)
        elif tasks:
            units = coordinator.start(tasks)
            _run_pool(units, coordinator, job, config, model_factory, workers, threads, tracker)
    outcomes += tracker.outcomes
    for o in outcomes:
        if o.content_hash:
            cache.remember(Path(o.path), FileStamp.of(Path(o.path)), o.content_hash)
    cache.save()
    summary = RunSummary.of(job.name, outcomes, time.monotonic() - started)
    write_reports(config.out_dir, job.name, summary, outcomes)
    log.info("finished", extra=fields(**summary.as_dict()))
    return summary, outcomes


def _run_pool(
    units: list[Unit],
    coordinator: Coordinator,
    job: Job,
    config: RunConfig,
    factory: ModelFactory,
    workers: int,
    threads: int,
    tracker: _Progress,
) -> None:
    # forkserver: workers fork from a clean server that has already imported bdisc, so
    # they start in milliseconds and inherit no threads; spawn where there is no fork.
    if "forkserver" in mp.get_all_start_methods():
        ctx: Any = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["bdisc.pipeline.runner", "bdisc.model.birdnet"])
    else:
        ctx = mp.get_context("spawn")
    progress_q = ctx.Queue()
    attempts: dict[tuple[Path, str], int] = {}
    todo = list(units)
    while todo:
        with ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(factory, threads, config.params, config.model_dir, progress_q),
        ) as pool:
            pending: dict[Future[FileOutcome], Unit] = {
                pool.submit(_pool_task, u, job, config): u for u in todo
            }
            todo = []
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_q, tracker)
                for fut in finished:
                    unit = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        tried = (unit.task.path, unit.name)
                        attempts[tried] = attempts.get(tried, 0) + 1
                        if attempts[tried] < 2:
                            todo.append(unit)
                            continue
                        outcome = FileOutcome(
                            path=str(unit.task.path),
                            rel=unit.task.rel.as_posix(),
                            status="failed",
                            duration_s=unit.task.info.duration_s,
                            error="WorkerCrashed",
                            message="the worker process died twice while this recording "
                            f"was in progress ({unit.name})",
                        )
                    more, final = coordinator.finished(unit, outcome)
                    for u in more:
                        try:
                            pending[pool.submit(_pool_task, u, job, config)] = u
                        except BrokenProcessPool:
                            todo.append(u)
                    if final is not None:
                        tracker.outcomes.append(final)
                        _log_outcome(final)
        _drain(progress_q, tracker)


def _drain(progress_q: Any, tracker: _Progress) -> None:
    while True:
        try:
            tracker.advance(progress_q.get_nowait())
        except queue.Empty:
            return


def _log_outcome(o: FileOutcome) -> None:
    if o.status == "failed":
        log.warning("recording failed", extra=fields(path=o.path, error=o.error, message=o.message))
    for w in o.warnings:
        log.warning("recording warning", extra=fields(path=o.path, warning=w))
