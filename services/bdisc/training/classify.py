"""A trained head applied to stored embeddings: detections of its classes in
BirdNET-Analyzer's formats (per recording and combined), without running BirdNET again.

Scores are BirdNET-Analyzer's for a custom classifier: its sigmoid of the logits with
the sensitivity's shift, so these files match what BirdNET-Analyzer writes with the
exported ``CustomClassifier.tflite`` on the same windows.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import BdiscError, ConfigError, IncompatibleArtifact, NotFound
from bdisc.fsutil import atomic_write_text
from bdisc.logs import fields
from bdisc.model.birdnet import SAMPLE_RATE
from bdisc.model.labels import Label
from bdisc.outputs import birdnet_formats as bf
from bdisc.outputs.embeddings import embedding_matrix, find_embedding_files, metadata_of
from bdisc.params import AnalysisParams
from bdisc.pipeline.jobs import recording_base
from bdisc.pipeline.scoring import Scorer
from bdisc.pipeline.summary import ERRORS_FILE
from bdisc.training.model_file import TrainedModel

log = logging.getLogger(__name__)


# What the audio the model saw depends on: stored embeddings must agree with the training
# embeddings on these (overlap, minimum length and tail windows only decide which windows
# there are). A missing audio_speed is 1.0 (provenance records it only when it is not).
MUST_MATCH = (
    "sample_rate",
    "window_s",
    "bandpass_fmin",
    "bandpass_fmax",
    "audio_speed",
    "model_precision",
)
DEFAULTS: dict[str, Any] = {"audio_speed": 1.0}
ERRORS_HEADER = ["path", "severity", "error", "message"]  # the pipeline's errors.csv
READ_COLUMNS = ("recording", "start_s", "end_s", "embedding")
READ_THREADS = 2  # files decoded at once while the head scores
READ_AHEAD = 2  # files read before their turn, at most (memory: long recordings are big)


@dataclass(frozen=True)
class ClassifyConfig:
    out_dir: Path
    formats: tuple[str, ...] = ("csv",)
    min_conf: float = 0.25  # as BirdNET-Analyzer 2.4
    sensitivity: float = 1.0
    merge_consecutive: int = 1
    custom_classifier: str = ""  # the classifier's path, for the params file
    model_file: str = ""  # the model column (BirdNET-Analyzer: the model's file name)
    # errors.csv: add to the one of this run's embedding step instead of replacing it
    append_errors: bool = False


@dataclass
class ClassifySummary:
    recordings: int = 0
    windows: int = 0
    detections: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # path, error, message
    written: list[Path] = field(default_factory=list)


def _setting(window: dict[str, Any], key: str) -> Any:
    value = window.get(key, DEFAULTS.get(key))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def check_embeddings(model: TrainedModel, window: dict[str, Any], path: Path) -> None:
    """Refuse embeddings of another model, or of audio prepared otherwise (rate, window,
    band-pass, speed, precision), than those the head was trained on."""
    base = model.meta["base_model"]
    sha = window.get("model_sha256") or ""
    if window.get("model") != base["name"] or (sha and sha != base["sha256"]):
        raise IncompatibleArtifact(
            f"{path} holds embeddings of {window.get('model')} (sha256 {sha[:12] or '?'}); "
            f"the head was trained on {base['name']} (sha256 {base['sha256'][:12]})",
            path=str(path),
        )
    trained = model.meta.get("embedding") or {}
    differs = [k for k in MUST_MATCH if _setting(window, k) != _setting(trained, k)]
    if differs:
        detail = ", ".join(
            f"{k} {_setting(window, k)} (trained on {_setting(trained, k)})" for k in differs
        )
        raise IncompatibleArtifact(
            f"{path} was embedded with other settings than the head was trained on: {detail}",
            path=str(path),
            differs=differs,
        )


def params_of(window: dict[str, Any], config: ClassifyConfig) -> AnalysisParams:
    """The run's parameters as the embeddings' windows and the options make them."""
    return AnalysisParams(
        overlap_s=float(window.get("overlap_s", 0.0)),
        min_len_s=float(window.get("min_len_s", 1.0)),
        bandpass=Bandpass(
            float(window.get("bandpass_fmin", 0.0)), float(window.get("bandpass_fmax", 15000.0))
        ),
        audio_speed=float(window.get("audio_speed", 1.0)),
        sensitivity=config.sensitivity,
        min_conf=config.min_conf,
    )


@dataclass(frozen=True)
class _Stored:
    meta: dict[str, Any]
    window: dict[str, Any]
    table: pa.Table


def _read(path: Path) -> _Stored:
    """One embeddings file, read once and only the columns a head needs; ValueError (or
    an Arrow/OS error) if it cannot be read."""
    table = pq.ParquetFile(path, memory_map=True).read(columns=list(READ_COLUMNS))
    meta = metadata_of(table.schema, path)
    window = meta["window"]
    if not isinstance(window, dict):
        raise ValueError("its window provenance is not an object")
    return _Stored(meta, window, table)


def _attempt(path: Path) -> _Stored | Exception:
    try:
        return _read(path)
    except Exception as exc:  # raised again where the file is handled, in order
        return exc


def _read_ahead(files: Sequence[Path]) -> Iterator[tuple[Path, _Stored | Exception]]:
    """The files in order, each read (or its error), the next few read meanwhile on other
    threads (Parquet decoding releases the GIL): a corpus of short recordings is read
    while the head scores and the tables are written."""
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        pending: deque[tuple[Path, Future[_Stored | Exception]]] = deque()
        for path in files:
            pending.append((path, pool.submit(_attempt, path)))
            if len(pending) > READ_AHEAD:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def classify(
    model: TrainedModel, folders: Sequence[Path], config: ClassifyConfig
) -> ClassifySummary:
    """Every embeddings file under ``folders``: per recording, the windows whose class
    score reaches ``min_conf`` (best first), written under ``out_dir`` by the recording's
    path; then the combined tables and the params file. A file that cannot be read is
    a failure of its recording (errors.csv) and the others go on; embeddings made
    otherwise than the head's are refused (IncompatibleArtifact)."""
    files = find_embedding_files(folders)
    if not files:
        raise NotFound(f"no embeddings files under {', '.join(map(str, folders))}")
    labels = [Label.parse(c) for c in model.classes]
    reference: dict[str, Any] | None = None
    first: Path | None = None
    summary = ClassifySummary()
    recs: list[bf.RecordingDetections] = []
    report: bf.Report | None = None
    scorer: Scorer | None = None
    for path, read in _read_ahead(files):
        try:
            if isinstance(read, Exception):
                raise read
            stored = read
            matrix = embedding_matrix(stored.table)
            starts = [float(s) for s in stored.table.column("start_s").to_numpy()]
            ends = [float(e) for e in stored.table.column("end_s").to_numpy()]
            recording = stored.meta.get("recording") or {}
            rel = str(recording.get("path") or stored.table.column("recording")[0].as_py())
        except (OSError, ValueError, KeyError, TypeError, IndexError, pa.ArrowException) as exc:
            _failed(summary, path, exc)
            continue
        except IncompatibleArtifact as exc:  # not a bdisc embeddings file
            _failed(summary, path, exc)
            continue
        window = stored.window
        check_embeddings(model, window, path)
        if reference is None:
            reference, first = window, path
            if not window.get("model_sha256"):
                log.warning(
                    "the embeddings do not name their model file: its SHA-256 is not checked",
                    extra=fields(path=str(path)),
                )
            params = params_of(window, config)
            report = bf.Report(
                params,
                merge_consecutive=config.merge_consecutive,
                model_file=config.model_file,
                custom_classifier=config.custom_classifier,
            )
            scorer = Scorer(params, labels)
        elif window != reference:
            raise IncompatibleArtifact(
                f"{path} was made with other window settings than {first}", path=str(path)
            )
        assert report is not None and scorer is not None
        try:
            scores = scorer.scores(model.head.logits(matrix))
        except ConfigError as exc:  # embeddings of another size than the head takes
            _failed(summary, path, exc)
            continue
        rows = [
            bf.DetectionRow(s, e, labels[d.label], d.score)
            for s, e, found in zip(starts, ends, scorer.detections(scores), strict=True)
            for d in found
        ]
        rec = bf.RecordingDetections(
            Path(recording.get("source") or rel),
            int(recording.get("sample_rate") or SAMPLE_RATE),
            float(recording.get("duration_s") or max(ends, default=0.0)),
            rows,
        )
        summary.written += bf.write_recording(
            recording_base(config.out_dir, Path(rel)), config.formats, rec, report
        )
        recs.append(rec)
        summary.recordings += 1
        summary.windows += len(starts)
        summary.detections += len(rows)
    summary.written.append(_write_errors(config, summary.failed))
    if report is None:
        raise IncompatibleArtifact(
            f"none of the {len(files)} embeddings files could be read (see "
            f"{config.out_dir / ERRORS_FILE})",
            path=str(files[0]),
        )
    summary.written += bf.write_combined(config.out_dir, config.formats, recs, report)
    log.info(
        "classified",
        extra=fields(
            recordings=summary.recordings,
            windows=summary.windows,
            detections=summary.detections,
            failed=len(summary.failed),
            out=str(config.out_dir),
        ),
    )
    return summary


def _failed(summary: ClassifySummary, path: Path, exc: Exception) -> None:
    kind = exc.kind if isinstance(exc, BdiscError) else "IncompatibleArtifact"
    message = f"{path} cannot be read as embeddings: {exc}"
    log.warning("embeddings file skipped", extra=fields(path=str(path), error=message))
    summary.failed.append((str(path), kind, message))


def _write_errors(config: ClassifyConfig, failed: list[tuple[str, str, str]]) -> Path:
    """errors.csv as the pipeline writes it: this run's failures (after the embedding
    step's, with ``append_errors``)."""
    path = config.out_dir / ERRORS_FILE
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if config.append_errors and path.is_file():
        buf.write(path.read_text(encoding="utf-8"))
    else:
        writer.writerow(ERRORS_HEADER)
    writer.writerows([p, "error", kind, message] for p, kind, message in failed)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buf.getvalue())
    return path
