"""The embedding stage: one recording from the object store -> its embeddings Parquet.

Runs the same per-recording function as ``bdisc embed`` (decode, window, BirdNET, Parquet).
The output key is content-addressed, so a redelivered or repeated message finds the
result in place and only reports it. Bad audio is a result too (an ``EmbedFailed``
event); only infrastructure trouble (Retryable) makes the bus retry.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from bdisc.app.keys import embedding_key
from bdisc.app.messages import Embedded, EmbedWork, Event, PlannedRecording
from bdisc.app.object_file import open_object
from bdisc.app.stage_handler import Routes
from bdisc.audio.reader import probe, probe_file
from bdisc.errors import AudioError, describe
from bdisc.logs import fields
from bdisc.model.port import AcousticModel
from bdisc.params import AnalysisParams
from bdisc.pipeline.jobs import EmbedJob
from bdisc.pipeline.recording_task import (
    FileTask,
    ModelWorker,
    RunConfig,
    process_file,
    process_part,
)
from bdisc.pipeline.resume import hash_file
from bdisc.pipeline.scoring import Scorer
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)


class EmbedStage:
    def __init__(
        self,
        model: AcousticModel,
        objects: ObjectStore,
        scratch: Path | None = None,
        batch_size: int = 8,
        on_windows: Callable[[int], object] | None = None,
    ) -> None:
        self.model, self.objects = model, objects
        self.scratch, self.batch_size = scratch, batch_size
        self.on_windows = on_windows  # e.g. the windows/s counter of the service's metrics
        self._workers: dict[str, ModelWorker] = {}

    @property
    def routes(self) -> Routes:
        return {EmbedWork: self.embed}

    def _worker(self, params: AnalysisParams) -> ModelWorker:
        key = params.score_key(self.model.info)
        if key not in self._workers:  # the scorer depends on the job's species filter
            self._workers[key] = ModelWorker(self.model, Scorer(params, self.model.labels))
        return self._workers[key]

    def embed(self, job_id: str, work: EmbedWork) -> Event:
        if work.recording is not None:
            return self._embed_part(job_id, work, work.recording)
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            local = Path(tmp) / "audio" / PurePosixPath(work.rel).name
            self.objects.download(work.audio_key, local)  # NotFound / Retryable propagate
            try:
                info = probe(local)
            except AudioError as exc:
                return work.failed(": ".join(describe(exc)))
            digest = hash_file(local)
            key = embedding_key(work.params.score_key(self.model.info), digest, work.rel)
            if self.objects.exists(key):
                log.info("already embedded", extra=fields(job_id=job_id, key=key))
                return Embedded(key=work.item, group=work.group, output=key)
            task = FileTask(local, Path(work.rel), info, digest)
            config = RunConfig(
                Path(tmp) / "out", work.params, batch_size=self.batch_size, progress=False
            )
            outcome = process_file(task, EmbedJob(), config, self._worker(work.params), None)
            if outcome.status != "done":
                return work.failed(f"{outcome.error}: {outcome.message}")
            (produced,) = outcome.outputs  # the Parquet file
            self.objects.put_file(key, produced, content_type="application/vnd.apache.parquet")
        return self._done(job_id, work, key, outcome.windows)

    def _embed_part(self, job_id: str, work: EmbedWork, planned: PlannedRecording) -> Event:
        """One part of a long recording, read from the store by ranges (its span and a
        second on each side, not the file); its key names the object's version."""
        part = planned.part
        assert part is not None
        content = f"{planned.version}#{part.key}"
        key = embedding_key(work.params.score_key(self.model.info), content, work.rel)
        if self.objects.exists(key):
            log.info("already embedded", extra=fields(job_id=job_id, key=key))
            return Embedded(key=work.item, group=work.group, output=key)
        size = self.objects.size(work.audio_key)
        with (
            tempfile.TemporaryDirectory(dir=self.scratch) as tmp,
            open_object(self.objects, work.audio_key, size) as source,
        ):
            if self.objects.version(work.audio_key) != planned.version:
                return work.failed("the recording was replaced after the job was planned")
            try:
                info = probe_file(source, work.audio_key, size)
            except AudioError as exc:
                return work.failed(": ".join(describe(exc)))
            task = FileTask(Path(work.rel), Path(work.rel), info, content)
            config = RunConfig(
                Path(tmp) / "out", work.params, batch_size=self.batch_size, progress=False
            )
            worker = self._worker(work.params)
            outcome = process_part(task, part, EmbedJob(), config, worker, None, source)
            if outcome.status != "done":
                return work.failed(f"{outcome.error}: {outcome.message}")
            (produced,) = outcome.outputs
            self.objects.put_file(key, produced, content_type="application/vnd.apache.parquet")
        return self._done(job_id, work, key, outcome.windows)

    def _done(self, job_id: str, work: EmbedWork, key: str, windows: int) -> Event:
        log.info("embedded", extra=fields(job_id=job_id, key=key, windows=windows))
        if self.on_windows is not None:
            self.on_windows(windows)
        return Embedded(key=work.item, group=work.group, output=key)
