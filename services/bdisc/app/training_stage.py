"""The training stage: jobs over a finished discovery job's stored embeddings and labels,
run by the same functions as the CLI on a local copy of its results
(``stored_results.py``); nothing re-reads audio but montages and a search's example.

    TrainWork       -> the model folder (``projects/<p>/models/<id>/``): head, model.json,
                       metrics, BirdNET-Analyzer's CustomClassifier.tflite (``bdisc train``)
    ClassifyWork    -> detections of the model's classes under the job's results
                       (``bdisc classify``)
    SearchWork      -> matches, montage and a review group ``search-<job>`` among the
                       discovery job's results, labelled there (``bdisc search``)
    DuplicatesWork  -> duplicates.csv and duplicates_exclude.csv (``bdisc duplicates``)
    SuggestWork     -> a review group ``suggest-<job>`` of windows to label (``bdisc
                       suggest``)

Search and duplicates keep the window index beside the discovery job's results
(``.../results/index/``): a later job updates it instead of building it again.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from bdisc.app.keys import audio_prefix, files_prefix
from bdisc.app.messages import (
    Classified,
    ClassifyWork,
    DuplicatesFound,
    DuplicatesWork,
    Event,
    ExampleSpan,
    Searched,
    SearchWork,
    Suggested,
    SuggestWork,
    Trained,
    TrainWork,
)
from bdisc.app.publish import publish_folder
from bdisc.app.stage_handler import Routes
from bdisc.app.stored_results import ResultsReader
from bdisc.errors import ConfigError
from bdisc.logs import fields
from bdisc.model.birdnet import MODEL_FILE, BirdNetV24
from bdisc.model.port import AcousticModel
from bdisc.ports.object_store import ObjectStore, check_key
from bdisc.search.api import SearchConfig, duplicates, search
from bdisc.search.duplicates import DuplicateParams
from bdisc.training.api import TrainConfig, train
from bdisc.training.classify import ClassifyConfig, classify
from bdisc.training.fit import FitConfig
from bdisc.training.model_file import TrainedModel, load_model
from bdisc.training.suggest import SuggestConfig, suggest
from bdisc.training.tflite_export import TFLITE_FILE

log = logging.getLogger(__name__)


class TrainingStage:
    def __init__(
        self, objects: ObjectStore, scratch: Path | None = None, model_dir: Path | None = None
    ) -> None:
        self.objects, self.scratch, self.model_dir = objects, scratch, model_dir

    @property
    def routes(self) -> Routes:
        return {
            TrainWork: self.train,
            ClassifyWork: self.classify,
            SearchWork: self.search,
            DuplicatesWork: self.duplicates,
            SuggestWork: self.suggest,
        }

    def _scratch(self) -> tempfile.TemporaryDirectory[str]:
        return tempfile.TemporaryDirectory(dir=self.scratch)

    def _model(self, prefix: str, folder: Path) -> TrainedModel:
        for key in self.objects.list(prefix):
            self.objects.download(key, folder / key[len(prefix) :])
        return load_model(folder, self.model_dir)

    def train(self, job_id: str, work: TrainWork) -> Event:
        o = work.options
        with self._scratch() as tmp:
            root = Path(tmp)
            local = ResultsReader(self.objects, work.project, work.source).fetch(root)
            exclude = None
            if work.exclude:
                exclude = root / PurePosixPath(work.exclude).name
                self.objects.download(work.exclude, exclude)
            config = TrainConfig(
                source=local.results,
                out_dir=root / "model",
                fit=FitConfig(
                    head=o.head,
                    hidden=o.hidden,
                    epochs=o.epochs,
                    learning_rate=o.learning_rate,
                    batch_size=o.batch_size,
                    balance=o.balance,
                    patience=o.patience,
                    weight_decay=o.weight_decay,
                    seed=o.seed,
                ),
                val_fraction=o.val_fraction,
                folds=o.folds,
                overrides=local.overrides,
                accept_suggestions=o.accept_suggestions,
                source_name=f"discovery job {work.source.discovery_job}",
                exclude=exclude,
                model_dir=self.model_dir,
            )
            result = train(config)
            publish_folder(self.objects, config.out_dir, work.output)
        report = {
            "classes": list(result.classes),
            "best_epoch": result.best_epoch,
            **result.report.summary(),
        }
        log.info("trained", extra=fields(job_id=job_id, classes=len(result.classes)))
        return Trained(output=work.output, report=_finite(report))

    def classify(self, job_id: str, work: ClassifyWork) -> Event:
        o = work.options
        with self._scratch() as tmp:
            root = Path(tmp)
            reader = ResultsReader(self.objects, work.project, work.source)
            reader.fetch_embeddings(root / "embeddings")
            model = self._model(work.model, root / "model")
            tflite = model.verified_file(TFLITE_FILE)
            config = ClassifyConfig(
                out_dir=root / "out",
                formats=o.formats,
                min_conf=o.min_conf,
                sensitivity=o.sensitivity,
                merge_consecutive=o.merge_consecutive,
                custom_classifier=f"{work.model}{TFLITE_FILE}" if tflite else "",
                model_file=TFLITE_FILE if tflite else MODEL_FILE,
            )
            summary = classify(model, [root / "embeddings"], config)
            publish_folder(self.objects, config.out_dir, work.output)
        report = {
            "recordings": summary.recordings,
            "windows": summary.windows,
            "detections": summary.detections,
            "failed": len(summary.failed),
        }
        log.info("classified", extra=fields(job_id=job_id, **report))
        return Classified(output=work.output, report=report)

    def search(self, job_id: str, work: SearchWork) -> Event:
        o = work.options
        with self._scratch() as tmp:
            root = Path(tmp)
            reader = ResultsReader(self.objects, work.project, work.source)
            local = reader.fetch(root, sheets=False)
            reader.fetch_index(local.results)
            audio = None if o.example is None else self._example(work.project, o.example, root)
            out = local.results / PurePosixPath(work.output.rstrip("/")).name
            model_dir = self.model_dir

            def model() -> AcousticModel:
                return BirdNetV24(model_dir)

            config = SearchConfig(
                results=local.results,
                out=out,
                audio=audio,
                start_s=o.example.start_s if o.example else 0.0,
                end_s=o.example.end_s if o.example else None,
                window=(o.window.recording, o.window.start_s) if o.window else None,
                top=o.top,
                max_distance=o.max_distance,
                montage_cap=o.montage_cap,
            )
            result = search(config, model, reader.read_span)
            reader.keep_index(local.results)
            publish_folder(self.objects, out, work.output)
        report: dict[str, Any] = {
            "matches": len(result.matches),
            "nearest": result.matches[0].distance if result.matches else None,
            "windows": result.index.windows,
            "index_rebuilt": result.index.rebuilt,
            "group": result.group,
        }
        log.info("searched", extra=fields(job_id=job_id, **report))
        return Searched(output=work.output, report=_finite(report))

    def _example(self, project: str, example: ExampleSpan, root: Path) -> Path:
        """An uploaded file (files/...) or recording (audio/...), fetched to disk."""
        kind, _, name = example.path.partition("/")
        check_key(name)
        base = files_prefix(project) if kind == "files" else audio_prefix(project)
        if not self.objects.exists(base + name):
            raise ConfigError(f"nothing uploaded at {example.path}", field="example.path")
        local = root / "example" / PurePosixPath(name).name
        self.objects.download(base + name, local)
        return local

    def duplicates(self, job_id: str, work: DuplicatesWork) -> Event:
        o = work.options
        with self._scratch() as tmp:
            root = Path(tmp)
            reader = ResultsReader(self.objects, work.project, work.source)
            local = reader.fetch(root, sheets=False)
            reader.fetch_index(local.results)
            params = DuplicateParams(
                min_windows=o.min_windows,
                max_distance=o.max_distance,
                neighbours=o.neighbours,
                silence_db=o.silence_db,
            )
            result = duplicates(local.results, root / "out", params)
            reader.keep_index(local.results)
            publish_folder(self.objects, root / "out", work.output)
        report = {"duplicates": len(result.duplicates), "windows": result.index.windows}
        log.info("duplicates listed", extra=fields(job_id=job_id, **report))
        return DuplicatesFound(output=work.output, report=report)

    def suggest(self, job_id: str, work: SuggestWork) -> Event:
        o = work.options
        with self._scratch() as tmp:
            root = Path(tmp)
            reader = ResultsReader(self.objects, work.project, work.source)
            local = reader.fetch(root)
            model = self._model(work.model, root / "model")
            out = local.results / PurePosixPath(work.output.rstrip("/")).name
            config = SuggestConfig(
                results=local.results,
                out_dir=out,
                n=o.n,
                focus=o.focus,
                strategy=o.strategy,
                seed=o.seed,
                explore=o.explore,
                overrides=local.overrides,
                accept_suggestions=o.accept_suggestions,
            )
            result = suggest(model, config, reader.read_span)
            publish_folder(self.objects, out, work.output)
        report = {
            "suggested": len(result.suggestions),
            "pool": result.pool,
            "skipped": result.skipped,
        }
        log.info("suggested", extra=fields(job_id=job_id, **report))
        return Suggested(output=work.output, report=report)


def _finite(report: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a metric that could not be measured is null."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in report.items()
    }
