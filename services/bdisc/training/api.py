"""``train``: labelled windows -> a head, its validation report, its model folder and
its BirdNET-Analyzer custom classifier.

source -> training set (a discover results folder: stored embeddings; a clip folder:
embedded first) -> validation split by recording (or k folds) -> fit with early stopping
-> per-class report -> model folder (head.npz, model.json) -> CustomClassifier.tflite.
With k folds the report is out-of-fold, and the kept head is trained on every window for
the median of the folds' best epochs.

The metrics come from the validation windows that also chose the early-stopping epoch, so
they are somewhat optimistic; model.json records which recordings validated (their hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.discovery.exclude import excluded, read_exclusions
from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.logs import fields
from bdisc.model.birdnet import EMBEDDING_DIM
from bdisc.params import AnalysisParams
from bdisc.pipeline.recording_task import RunConfig
from bdisc.training import metrics
from bdisc.training.dataset import TrainingSet, assemble
from bdisc.training.fit import FitConfig, FitResult, fit
from bdisc.training.from_clips import from_clips, is_clip_folder
from bdisc.training.from_results import from_results, is_results_folder
from bdisc.training.head import Head
from bdisc.training.model_file import HEAD_FILE, MODEL_JSON, base_model, save_model
from bdisc.training.split import folds_by_recording, split_by_recording
from bdisc.training.tflite_export import EXPORT_FILES, TFLITE_FILE, export_classifier, params_row

log = logging.getLogger(__name__)

CLIP_EMBEDDINGS = "clip_embeddings"  # where a clip folder's embeddings are kept


@dataclass(frozen=True)
class TrainConfig:
    source: Path  # a discover results folder or a clip folder (TRAINSET/<Label>/*.wav)
    out_dir: Path  # the model folder
    fit: FitConfig = field(default_factory=FitConfig)
    val_fraction: float = 0.2
    folds: int | None = None  # k-fold instead of one split
    export: bool = True  # write the BirdNET-Analyzer custom classifier
    # A results folder: per-window labels (folder, file, start_s, label; they win over
    # their cluster's label), and `bdisc export --accept-suggestions`'s project labels.
    overrides: Path | None = None
    accept_suggestions: bool = False
    # What model.json names as the source and overrides (default: their paths), e.g. a
    # service's "discovery job <id>" for a folder it made for the run
    source_name: str | None = None
    # Spans to leave out of the training set (``bdisc duplicates``' duplicates_exclude.csv:
    # recording, start_s, end_s; the copies of audio stored twice)
    exclude: Path | None = None
    # Embedding a clip folder:
    min_len_s: float = 1.0
    workers: int = 1
    batch_size: int = 8
    progress: bool = False
    model_dir: Path | None = None
    split_long: bool = True

    def __post_init__(self) -> None:
        if self.folds is not None and self.folds < 2:
            raise ConfigError(f"k-fold needs at least 2 folds, got {self.folds}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"validation fraction must be in (0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class TrainResult:
    head: Head
    classes: tuple[str, ...]
    report: metrics.Report
    best_epoch: int
    files: list[Path]


def load_training_set(config: TrainConfig) -> TrainingSet:
    source = config.source
    if not source.exists():
        raise NotFound(f"no such folder: {source}", path=str(source))
    if is_results_folder(source):
        return from_results(source, config.overrides, config.accept_suggestions)
    if is_clip_folder(source):
        run = RunConfig(
            out_dir=config.out_dir / CLIP_EMBEDDINGS,
            params=AnalysisParams(min_len_s=config.min_len_s),
            workers=config.workers,
            batch_size=config.batch_size,
            progress=config.progress,
            model_dir=config.model_dir,
            split_long=config.split_long,
        )
        return from_clips(source, run)
    raise ConfigError(
        f"{source} is neither a discover results folder (embeddings/ and */review.csv) "
        "nor a training set (<Label>/<clip>.wav)",
        path=str(source),
    )


def leave_out(data: TrainingSet, path: Path) -> tuple[TrainingSet, int]:
    """The training set without its windows inside the spans listed in ``path``, and how
    many were left out."""
    if data.ends is not None:
        ends = data.ends
    else:
        ends = data.starts + float(data.provenance.get("window_s", 3.0))
    out = excluded(data.recordings, data.starts, ends, read_exclusions(path))
    if not out.any():
        return data, 0
    keep = ~out
    kept = assemble(
        data.embeddings[keep],
        [label for label, k in zip(data.labels, keep, strict=True) if k],
        list(data.recordings[keep]),
        list(data.starts[keep]),
        data.provenance,
        None if data.ends is None else list(ends[keep]),
    )
    log.info("windows left out", extra=fields(excluded=int(out.sum()), listed_in=str(path)))
    return kept, int(out.sum())


def _warn_uncovered(
    data: TrainingSet, train_rows: np.ndarray, val_rows: np.ndarray, split: str
) -> None:
    """A class without training positives cannot be learnt in this split; one without
    validation positives or negatives cannot be measured there."""
    y = data.targets
    for c, label in enumerate(data.classes):
        train_pos = int(y[train_rows, c].sum())
        val_pos = int(y[val_rows, c].sum())
        val_neg = len(val_rows) - val_pos
        missing = [
            what
            for what, n in (
                ("training positives", train_pos),
                ("validation positives", val_pos),
                ("validation negatives", val_neg),
            )
            if n == 0
        ]
        if missing:
            log.warning(
                f"{label}: no {' and no '.join(missing)} in {split}; its metrics there "
                "are left out",
                extra=fields(label=label, split=split, missing=missing),
            )


def _validate(
    data: TrainingSet, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray, list[FitResult]]:
    """Out-of-sample scores for every window (NaN where a window never validated), the
    rows that validated, and each split's fit."""
    x, y = data.embeddings, data.targets
    if config.folds is not None:
        splits = folds_by_recording(data.recordings, data.labels, config.folds, config.fit.seed)
    else:
        splits = [
            split_by_recording(data.recordings, data.labels, config.val_fraction, config.fit.seed)
        ]
    scores = np.full(y.shape, np.nan, dtype=np.float32)
    validated = np.zeros(len(data), dtype=bool)
    results: list[FitResult] = []
    for number, (train_rows, val_rows) in enumerate(splits, start=1):
        split = f"fold {number} of {len(splits)}" if config.folds is not None else "validation"
        _warn_uncovered(data, train_rows, val_rows, split)
        result = fit(x[train_rows], y[train_rows], config.fit, x[val_rows], y[val_rows])
        scores[val_rows] = result.head.scores(x[val_rows])
        validated[val_rows] = True
        results.append(result)
        log.info(
            "validation fit",
            extra=fields(
                split=split,
                train=len(train_rows),
                validation=len(val_rows),
                best_epoch=result.best_epoch,
                val_loss=round(min(result.val_loss), 5),
            ),
        )
    return scores, np.flatnonzero(validated), results


def _check_embeddings(data: TrainingSet, base: dict[str, str], source: Path) -> None:
    """The stored embeddings must be the installed model's: its name, its file (when the
    embeddings record one) and its embedding size."""
    name = data.provenance.get("model")
    model_sha = data.provenance.get("model_sha256") or ""
    dim = int(data.embeddings.shape[1])
    if name != base["name"] or (model_sha and model_sha != base["sha256"]):
        raise IncompatibleArtifact(
            f"the embeddings of {source} were made with {name} (sha256 "
            f"{model_sha[:12] or '?'}), not the installed {base['name']} (sha256 "
            f"{base['sha256'][:12]})",
            path=str(source),
        )
    if dim != EMBEDDING_DIM:
        raise IncompatibleArtifact(
            f"the embeddings of {source} have {dim} dimensions; {base['name']} gives "
            f"{EMBEDDING_DIM}",
            path=str(source),
        )


def train(config: TrainConfig) -> TrainResult:
    base = base_model(config.model_dir)
    data = load_training_set(config)
    _check_embeddings(data, base, config.source)
    left_out = 0
    if config.exclude is not None:
        data, left_out = leave_out(data, config.exclude)
    log.info(
        "training set",
        extra=fields(
            windows=len(data),
            recordings=len(set(data.recordings)),
            classes=len(data.classes),
            per_label=data.counts(),
        ),
    )
    scores, rows, results = _validate(data, config)
    reported = data.reported_labels()
    report = metrics.evaluate(
        scores[rows], data.targets[rows], data.classes, [reported[i] for i in rows]
    )
    final = results[0]  # one split: the head validated is the head kept
    if config.folds is not None:
        epochs = max(1, int(np.median([r.best_epoch for r in results])))
        final = fit(data.embeddings, data.targets, config.fit, epochs=epochs)
    files = metrics.write_report(report, config.out_dir)
    meta = _provenance(config, data, base, final, report, rows, left_out)
    exported: list[Path] = []
    if config.export:
        upsampling = 1.0 if config.fit.balance == "upsample" else 0.0
        row = params_row(
            final.head,
            config.fit.batch_size,
            config.fit.learning_rate,
            float(data.provenance.get("overlap_s", 0.0)),
            float(data.provenance.get("audio_speed", 1.0)),
            upsampling,
        )
        exported = export_classifier(
            final.head, data.classes, config.out_dir, row, config.model_dir
        )
    else:  # an earlier training's classifier would pass for this one's
        for name in EXPORT_FILES:
            (config.out_dir / name).unlink(missing_ok=True)
    tflite = [p for p in exported if p.name == TFLITE_FILE]
    save_model(config.out_dir, final.head, data.classes, meta, tflite)
    files += [config.out_dir / HEAD_FILE, config.out_dir / MODEL_JSON, *exported]
    log.info(
        "model written",
        extra=fields(out=str(config.out_dir), **{k: v for k, v in report.summary().items()}),
    )
    return TrainResult(final.head, data.classes, report, final.best_epoch, files)


def _provenance(
    config: TrainConfig,
    data: TrainingSet,
    base: dict[str, str],
    final: FitResult,
    report: metrics.Report,
    validated: np.ndarray,
    left_out: int,
) -> dict[str, Any]:
    hyper = asdict(config.fit)
    seed = hyper.pop("seed")
    if hyper["head"] == "linear":
        hyper.pop("hidden")
    return {
        "base_model": base,
        "embedding": data.provenance,
        "training_set": {
            "source": config.source_name or str(config.source),
            "overrides": (
                None
                if config.overrides is None
                else f"{config.source_name}: its window labels"
                if config.source_name
                else str(config.overrides)
            ),
            "accept_suggestions": config.accept_suggestions,
            "excluded": (
                None
                if config.exclude is None
                else {"list": config.exclude.name, "windows": left_out}
            ),
            "sha256": data.digest(),
            "windows": len(data),
            "recordings": len(set(data.recordings)),
            "windows_per_label": data.counts(),
        },
        "hyperparameters": {
            **hyper,
            "validation": (
                {"folds": config.folds}
                if config.folds is not None
                else {"fraction": config.val_fraction, "by": "recording"}
            ),
        },
        "validation_set": _validation_set(data, validated),
        "seed": seed,
        "epochs": {"best": final.best_epoch, "run": final.epochs_run},
        "metrics": report.summary(),
    }


def _validation_set(data: TrainingSet, rows: np.ndarray) -> dict[str, Any]:
    """The recordings whose windows validated (the early-stopping split: the metrics are
    measured on them), by count and by the SHA-256 of their sorted names."""
    names = sorted({str(data.recordings[i]) for i in rows})
    digest = hashlib.sha256(json.dumps(names, separators=(",", ":")).encode()).hexdigest()
    return {"windows": len(rows), "recordings": len(names), "sha256": digest}
