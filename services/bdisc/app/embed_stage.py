"""The embedding stage: one recording from the object store -> its embeddings Parquet.

Runs the same per-recording function as ``bdisc embed`` (decode, window, BirdNET, Parquet).
The output key is content-addressed, so a redelivered or repeated message finds the
result in place and only reports it. Bad audio is a result too (an ``embed_failed``
event); only infrastructure trouble (Retryable) makes the bus retry.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from bdisc.app import stages
from bdisc.app.events import report_event
from bdisc.app.keys import embedding_key
from bdisc.audio.reader import probe
from bdisc.errors import AudioError, describe
from bdisc.logs import fields
from bdisc.model.port import AcousticModel
from bdisc.pipeline.jobs import EmbedJob
from bdisc.pipeline.params import AnalysisParams
from bdisc.pipeline.resume import hash_file
from bdisc.pipeline.runner import FileTask, ModelWorker, RunConfig, process_file
from bdisc.pipeline.scoring import Scorer
from bdisc.ports.message_bus import Message, MessageBus
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)


class EmbedStage:
    def __init__(
        self,
        model: AcousticModel,
        objects: ObjectStore,
        bus: MessageBus,
        scratch: Path | None = None,
        batch_size: int = 8,
        on_windows: Callable[[int], object] | None = None,
    ) -> None:
        self.model, self.objects, self.bus = model, objects, bus
        self.scratch, self.batch_size = scratch, batch_size
        self.on_windows = on_windows  # e.g. the windows/s counter of the service's metrics
        self._workers: dict[str, ModelWorker] = {}

    def _worker(self, params: AnalysisParams) -> ModelWorker:
        key = params.score_key(self.model.info)
        if key not in self._workers:  # the scorer depends on the job's species filter
            self._workers[key] = ModelWorker(self.model, Scorer(params, self.model.labels))
        return self._workers[key]

    def _event(self, message: Message, kind: str, **extra: str) -> None:
        p = message.payload
        report_event(self.bus, message, kind, key=p["audio_key"], group=p["group"], **extra)

    def handle(self, message: Message) -> None:
        params = AnalysisParams.from_dict(message.payload["params"])
        audio_key, rel = message.payload["audio_key"], message.payload["rel"]
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            local = Path(tmp) / "audio" / PurePosixPath(rel).name
            self.objects.download(audio_key, local)  # NotFound / Retryable propagate
            try:
                info = probe(local)
            except AudioError as exc:
                self._event(message, stages.EMBED_FAILED, error=": ".join(describe(exc)))
                return
            digest = hash_file(local)
            key = embedding_key(params.score_key(self.model.info), digest, rel)
            if self.objects.exists(key):
                log.info("already embedded", extra=fields(job_id=message.job_id, key=key))
                self._event(message, stages.EMBEDDED, output=key)
                return
            out = Path(tmp) / "out"
            task = FileTask(local, Path(rel), info, digest)
            config = RunConfig(out, params, batch_size=self.batch_size, progress=False)
            outcome = process_file(task, EmbedJob(), config, self._worker(params), None)
            if outcome.status != "done":
                self._event(
                    message, stages.EMBED_FAILED, error=f"{outcome.error}: {outcome.message}"
                )
                return
            produced = out / "embeddings" / Path(rel).with_suffix(".embeddings.parquet")
            self.objects.put_file(key, produced, content_type="application/vnd.apache.parquet")
        log.info("embedded", extra=fields(job_id=message.job_id, key=key, windows=outcome.windows))
        if self.on_windows is not None:
            self.on_windows(outcome.windows)
        self._event(message, stages.EMBEDDED, output=key)
