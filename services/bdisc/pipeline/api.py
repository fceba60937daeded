"""The domain entry points: analyze and embed a set of recordings.

The CLI calls these; the services will too. Nothing here knows about transports.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

from bdisc.model.birdnet import BirdNetV24
from bdisc.outputs import birdnet_formats as bf
from bdisc.pipeline.jobs import AnalyzeJob, EmbedJob, recording_detections
from bdisc.pipeline.recording_task import ModelFactory, RunConfig
from bdisc.pipeline.runner import run
from bdisc.pipeline.summary import RunSummary

log = logging.getLogger(__name__)


def birdnet_factory(model_dir: Path | None) -> ModelFactory:
    """A picklable factory: worker processes build their own model from it."""
    return functools.partial(BirdNetV24, model_dir)


def analyze(
    inputs: Sequence[Path],
    config: RunConfig,
    formats: Sequence[str] = ("csv",),
    factory: ModelFactory | None = None,
    report: bf.Report | None = None,
) -> RunSummary:
    """Detections per recording in BirdNET-Analyzer formats, plus the combined tables and
    the settings file."""
    report = report or bf.Report(config.params)
    if report.params != config.params:
        raise ValueError("the report's parameters must be the run's")
    job = AnalyzeJob(report, tuple(formats))
    factory = factory or birdnet_factory(config.model_dir)
    summary, outcomes = run(inputs, job, config, factory)
    recs = [
        recording_detections(Path(o.path), o.payload)
        for o in sorted(outcomes, key=lambda o: o.rel)
        if o.status in ("done", "skipped")
    ]
    bf.write_combined(config.out_dir, formats, recs, report)
    return summary


def embed(
    inputs: Sequence[Path],
    config: RunConfig,
    text_export: bool = False,
    factory: ModelFactory | None = None,
    base: Path | None = None,
) -> RunSummary:
    """Embeddings and top scores per window, one Parquet file per recording."""
    summary, _ = run(
        inputs, EmbedJob(text_export), config, factory or birdnet_factory(config.model_dir), base
    )
    return summary
