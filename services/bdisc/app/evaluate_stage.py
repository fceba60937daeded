"""The evaluation stage: uploaded detections and annotations -> the tables, plots and report
of ``bdisc evaluate``, under the job's results (``.../results/evaluation/``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from bdisc.app.keys import files_prefix, results_prefix
from bdisc.app.messages import Evaluated, EvaluateWork, Event
from bdisc.app.publish import publish_folder
from bdisc.app.stage_handler import Routes
from bdisc.errors import ConfigError
from bdisc.evaluation.api import evaluate
from bdisc.evaluation.config import EvalConfig
from bdisc.evaluation.units import UnitOptions
from bdisc.logs import fields
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)


class EvaluateStage:
    def __init__(self, objects: ObjectStore, scratch: Path | None = None) -> None:
        self.objects, self.scratch = objects, scratch

    @property
    def routes(self) -> Routes:
        return {EvaluateWork: self.evaluate}

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

    def evaluate(self, job_id: str, work: EvaluateWork) -> Event:
        project, request = work.project, work.request
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            root = Path(tmp)
            config = EvalConfig(
                detections=[self._fetch(root / "in", project, request.detections)],
                truth=[self._fetch(root / "in", project, request.truth)],
                out=root / "out",
                granularity=request.granularity,
                threshold=request.threshold,
                species_map=self._fetch(root / "in", project, request.species_map)
                if request.species_map
                else None,
                units=UnitOptions(min_overlap_s=request.min_overlap_s),
            )
            result = evaluate(config)
            prefix = results_prefix(project, job_id, "evaluation")
            publish_folder(self.objects, config.out, prefix)
        log.info("evaluated", extra=fields(job_id=job_id, species=len(result.species)))
        return Evaluated(output=prefix)
