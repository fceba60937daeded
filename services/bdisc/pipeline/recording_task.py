"""What happens to one recording: decode, window, model, sink; resumable, never raises.

Shared by the local runner (``bdisc embed``/``analyze``, a process pool over many
recordings, in ``runner.py``) and the embedding service (one recording per message).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bdisc.audio.reader import AudioInfo
from bdisc.errors import BdiscError, TooShort, describe
from bdisc.logs import fields
from bdisc.model.port import AcousticModel
from bdisc.params import AnalysisParams
from bdisc.pipeline.inference import ProgressFn, StreamStats, infer_recording
from bdisc.pipeline.jobs import FileContext, Job
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
        save_state(
            spath,
            {
                "content_hash": digest,
                "key": key,
                "windows": stats.windows,
                "outputs": [p.relative_to(config.out_dir).as_posix() for p in written],
                "payload": payload,
                "warnings": stats.warnings,
            },
        )
    except Exception as exc:
        if not isinstance(exc, BdiscError):
            log.exception("unexpected error", extra=fields(path=str(task.path)))
        outcome.status = "failed"
        outcome.error, outcome.message = describe(exc)
    return outcome
