"""The evaluation stage: uploaded detections and annotations -> the tables, plots and report
of ``bdisc evaluate``, under the job's results (``.../results/evaluation/``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from bdisc.app import stages
from bdisc.app.cluster_stage import CONTENT_TYPES
from bdisc.app.events import report_event
from bdisc.app.keys import files_prefix, results_prefix
from bdisc.errors import ConfigError, describe, is_retryable
from bdisc.evaluation.api import EvalConfig, evaluate
from bdisc.evaluation.units import UnitOptions
from bdisc.logs import fields
from bdisc.ports.message_bus import Message, MessageBus
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)


class EvaluateStage:
    def __init__(self, objects: ObjectStore, bus: MessageBus, scratch: Path | None = None) -> None:
        self.objects, self.bus, self.scratch = objects, bus, scratch

    def _fetch(self, root: Path, project: str, name: str) -> Path:
        """A file or a folder of the project's uploads, copied under ``root``."""
        base = files_prefix(project)
        keys = [
            k
            for k in self.objects.list(base + name)
            if k == base + name or k.startswith(base + name.rstrip("/") + "/")
        ]
        if not keys:
            raise ConfigError(f"nothing uploaded at files/{name}")
        for key in keys:
            self.objects.download(key, root / key[len(base) :])
        return root / name.rstrip("/")

    def handle(self, message: Message) -> None:
        p: dict[str, Any] = message.payload
        try:
            prefix = self._run(message.job_id, p)
        except Exception as exc:
            if is_retryable(exc):
                raise
            error = ": ".join(describe(exc))
            report_event(self.bus, message, stages.EVALUATE_FAILED, error=error)
            return
        report_event(self.bus, message, stages.EVALUATED, output=prefix)

    def _run(self, job_id: str, p: dict[str, Any]) -> str:
        project = p["project"]
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            root = Path(tmp)
            config = EvalConfig(
                detections=[self._fetch(root / "in", project, p["detections"])],
                truth=[self._fetch(root / "in", project, p["truth"])],
                out=root / "out",
                granularity=p.get("granularity", "file"),
                threshold=float(p.get("threshold", 0.25)),
                species_map=self._fetch(root / "in", project, p["species_map"])
                if p.get("species_map")
                else None,
                units=UnitOptions(min_overlap_s=float(p.get("min_overlap_s", 0.5))),
            )
            result = evaluate(config)
            prefix = results_prefix(project, job_id, "evaluation")
            for f in sorted(config.out.iterdir()):
                self.objects.put_file(
                    prefix + f.name, f, content_type=CONTENT_TYPES.get(f.suffix, "text/markdown")
                )
        log.info("evaluated", extra=fields(job_id=job_id, species=len(result.species)))
        return prefix
