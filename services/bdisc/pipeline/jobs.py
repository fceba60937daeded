"""What a run makes of each recording: detections (analyze) or embeddings (embed).

A job opens a sink per recording; the sink receives the model's batches and, at the
end, writes its files atomically and returns them with a small payload that the
state record keeps (detections for the combined tables, for instance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from bdisc.audio.reader import AudioInfo
from bdisc.model.labels import Label
from bdisc.model.port import AcousticModel
from bdisc.outputs import birdnet_formats as bf
from bdisc.outputs import embeddings as emb
from bdisc.outputs.names import output_stem
from bdisc.params import AnalysisParams
from bdisc.pipeline.inference import StreamStats, WindowBatch
from bdisc.pipeline.resume import STATE_DIR
from bdisc.pipeline.scoring import Scorer
from bdisc.version import __version__ as VERSION


@dataclass(frozen=True)
class FileContext:
    info: AudioInfo
    rel: Path  # recording path relative to the input base
    out_dir: Path
    content_hash: str
    model: AcousticModel
    scorer: Scorer
    params: AnalysisParams


class Sink(Protocol):
    def add(self, batch: WindowBatch) -> None: ...

    def finish(self, stats: StreamStats) -> tuple[list[Path], dict[str, Any]]: ...

    def abort(self) -> None: ...


# What a part of a long recording left: the files it wrote and its payload.
PartResult = tuple[list[Path], dict[str, Any]]


class Job(Protocol):
    @property
    def name(self) -> str: ...

    def key(self, ctx: FileContext) -> str: ...

    def open(self, ctx: FileContext) -> Sink: ...

    def open_part(self, ctx: FileContext, part: str) -> Sink:
        """A sink for one part of a long recording (its files are provisional)."""
        ...

    def assemble(self, ctx: FileContext, parts: Sequence[PartResult]) -> PartResult:
        """The recording's outputs from its parts, in order (their files are removed)."""
        ...


def part_path(ctx: FileContext, job: str, part: str, suffix: str) -> Path:
    """Where a part of a long recording keeps its provisional output."""
    return ctx.out_dir / STATE_DIR / "parts" / job / ctx.rel.as_posix() / f"{part}{suffix}"


def output_base(ctx: FileContext, subdir: str = "") -> Path:
    """Output path of a recording without suffix, mirroring the input tree."""
    return recording_base(ctx.out_dir, ctx.rel, subdir)


def recording_base(out_dir: Path, rel: Path, subdir: str = "") -> Path:
    """Output path, without suffix, of the recording ``rel`` (relative to the input base;
    ``names.name_clashes`` finds recordings that would share it)."""
    stem = output_stem(rel)
    return out_dir / subdir / stem if subdir else out_dir / stem


@dataclass(frozen=True)
class AnalyzeJob:
    report: bf.Report
    formats: Sequence[str] = ("csv",)
    name: str = "analyze"

    def key(self, ctx: FileContext) -> str:
        formats = ",".join(sorted(self.formats))
        return f"{ctx.params.score_key(ctx.model.info)}-{formats}-{self.report.key()}"

    def open(self, ctx: FileContext) -> Sink:
        return _DetectionSink(self, ctx)

    def open_part(self, ctx: FileContext, part: str) -> Sink:
        return _DetectionSink(self, ctx, write=False)

    def assemble(self, ctx: FileContext, parts: Sequence[PartResult]) -> PartResult:
        payload = _detections_payload(ctx, [row for _, p in parts for row in p["detections"]])
        rec = recording_detections(Path(ctx.info.path), payload)
        return bf.write_recording(output_base(ctx), self.formats, rec, self.report), payload


def _detections_payload(ctx: FileContext, rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "detections": rows,
        "source_rate": ctx.info.sample_rate,
        "duration_s": ctx.info.duration_s,
    }


class _DetectionSink:
    def __init__(self, job: AnalyzeJob, ctx: FileContext, write: bool = True) -> None:
        self.job, self.ctx, self.write = job, ctx, write
        self.rows: list[list[Any]] = []

    def add(self, batch: WindowBatch) -> None:
        scores = self.ctx.scorer.scores(batch.logits)
        labels = self.ctx.model.labels
        for start, end, dets in zip(
            batch.start_s, batch.end_s, self.ctx.scorer.detections(scores), strict=True
        ):
            self.rows += [[float(start), float(end), labels[d.label].key, d.score] for d in dets]

    def finish(self, stats: StreamStats) -> tuple[list[Path], dict[str, Any]]:
        payload = _detections_payload(self.ctx, self.rows)
        if not self.write:
            return [], payload
        rec = recording_detections(Path(self.ctx.info.path), payload)
        written = bf.write_recording(output_base(self.ctx), self.job.formats, rec, self.job.report)
        return written, payload

    def abort(self) -> None:
        pass


def recording_detections(source: Path, payload: dict[str, Any]) -> bf.RecordingDetections:
    """Rebuild a recording's detections from its state payload (labels stored as keys)."""
    rows = [bf.DetectionRow(s, e, Label.parse(k), sc) for s, e, k, sc in payload["detections"]]
    return bf.RecordingDetections(
        source, int(payload["source_rate"]), float(payload["duration_s"]), rows
    )


@dataclass(frozen=True)
class EmbedJob:
    text_export: bool = False
    name: str = "embed"

    def key(self, ctx: FileContext) -> str:
        return ctx.params.score_key(ctx.model.info) + ("-txt" if self.text_export else "")

    def open(self, ctx: FileContext) -> Sink:
        return _EmbeddingSink(self._writer(ctx), ctx)

    def open_part(self, ctx: FileContext, part: str) -> Sink:
        return _EmbeddingSink(self._writer(ctx, part_path(ctx, self.name, part, emb.SUFFIX)), ctx)

    def assemble(self, ctx: FileContext, parts: Sequence[PartResult]) -> PartResult:
        writer = self._writer(ctx)
        try:
            for files, _ in parts:
                for f in files:
                    writer.add_table(pq.read_table(f))
            written = writer.close()
        except BaseException:
            writer.abort()
            raise
        for files, _ in parts:
            for f in files:
                f.unlink(missing_ok=True)
        return written, {"rows": writer.rows}

    def _writer(self, ctx: FileContext, part: Path | None = None) -> emb.EmbeddingWriter:
        """The recording's embeddings file, or a part's provisional one (no text)."""
        base = output_base(ctx, "embeddings")
        metadata = {
            "bdisc_version": VERSION,
            "window": ctx.params.window_provenance(ctx.model.info),
            "scores": ctx.params.score_provenance(ctx.model.info),
            "recording": {
                "path": ctx.rel.as_posix(),
                "source": ctx.info.path,
                "content_hash": ctx.content_hash,
                "duration_s": ctx.info.duration_s,
                "sample_rate": ctx.info.sample_rate,
                "channels": ctx.info.channels,
            },
        }
        text = self.text_export and part is None
        return emb.EmbeddingWriter(
            part or base.with_name(base.name + emb.SUFFIX),
            ctx.rel.as_posix(),
            ctx.model.info.embedding_dim,
            ctx.model.labels,
            metadata,
            text_path=base.with_name(base.name + emb.TEXT_SUFFIX) if text else None,
        )


class _EmbeddingSink:
    def __init__(self, writer: emb.EmbeddingWriter, ctx: FileContext) -> None:
        self.writer, self.ctx = writer, ctx

    def add(self, batch: WindowBatch) -> None:
        idx, top = self.ctx.scorer.top_k(self.ctx.scorer.scores(batch.logits))
        self.writer.add(batch.start_s, batch.end_s, batch.embeddings, idx, top, batch.rms_dbfs)

    def finish(self, stats: StreamStats) -> tuple[list[Path], dict[str, Any]]:
        return self.writer.close(), {"rows": self.writer.rows}

    def abort(self) -> None:
        self.writer.abort()
