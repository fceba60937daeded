"""One recording through the model: decode, window, filter, batch, infer; streamed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import BinaryIO

import numpy as np

from bdisc.audio.bandpass import WindowFilter
from bdisc.audio.reader import AudioInfo, DecodeStats, stream_mono, stream_range
from bdisc.audio.windows import Window, WindowSpec, frame_windows
from bdisc.errors import PartShort
from bdisc.model.port import AcousticModel
from bdisc.params import AnalysisParams
from bdisc.pipeline.parts import WHOLE, Part
from bdisc.prefetch import prefetch

# Called with the number of seconds of the recording just processed.
ProgressFn = Callable[[float], None]

# Level reported for digital silence (and the floor of every level).
SILENCE_FLOOR_DB = -120.0

# A decoded length this much shorter than the header's counts as truncation.
TRUNCATION_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class WindowBatch:
    start_s: np.ndarray  # float64 (B,)
    end_s: np.ndarray  # float64 (B,)
    logits: np.ndarray  # float32 (B, n_classes)
    embeddings: np.ndarray  # float32 (B, embedding_dim)
    rms_dbfs: np.ndarray  # float32 (B,): level of the audio in the window (before band-pass)

    def __len__(self) -> int:
        return int(self.start_s.shape[0])

    def in_file_time(self, speed: float, duration_s: float) -> WindowBatch:
        """Times of audio played at ``speed``, back in the recording's own seconds (a
        window ends at the recording's end at the latest, as BirdNET-Analyzer's)."""
        return replace(
            self,
            start_s=self.start_s * speed,
            end_s=np.minimum(self.end_s * speed, max(duration_s, float(self.start_s[-1]) * speed)),
        )


@dataclass
class StreamStats:
    windows: int = 0
    decoded_s: float = 0.0
    warnings: list[str] = field(default_factory=list)


def infer_blocks(
    blocks: Iterator[np.ndarray],
    model: AcousticModel,
    params: AnalysisParams,
    batch_size: int,
    stats: StreamStats,
    progress: ProgressFn | None = None,
    part: Part = WHOLE,
) -> Iterator[WindowBatch]:
    """Any stream of mono float32 blocks at the model's rate (a file, a live gRPC stream;
    for a ``part``, blocks from its first window's start)."""
    spec = params.window_spec(model.info.sample_rate, model.info.window_s)
    band = WindowFilter(params.bandpass, model.info.sample_rate)
    windows = frame_windows(blocks, spec, first_index=part.first, count=part.count)
    done_s = part.first * spec.step_samples / spec.sample_rate
    for starts, ends, levels, samples in prefetch(_batches(windows, batch_size, band)):
        out = model.infer(samples)
        yield WindowBatch(starts, ends, out.logits, out.embeddings, levels)
        stats.windows += len(starts)
        if progress is not None:
            progress(float(ends[-1]) - done_s)
            done_s = float(ends[-1])


def infer_recording(
    info: AudioInfo,
    model: AcousticModel,
    params: AnalysisParams,
    batch_size: int,
    stats: StreamStats,
    progress: ProgressFn | None = None,
    part: Part = WHOLE,
    source: BinaryIO | None = None,
) -> Iterator[WindowBatch]:
    """A recording's windows through the model, or those of one ``part`` of it (read
    from ``source`` when given, an object in the store, else from its path)."""
    decode = DecodeStats()
    seen = 0.0
    speed = params.audio_speed
    rate = model.info.sample_rate
    spec = params.window_spec(rate, model.info.window_s)
    span_s = part_seconds(part, spec, info.duration_s)

    def counted(model_seconds: float) -> None:
        nonlocal seen
        seen += model_seconds * speed
        if progress is not None:
            progress(model_seconds * speed)

    if part == WHOLE:
        blocks = stream_mono(info, rate, stats=decode, speed=speed, source=source)
    else:
        first = part.first * spec.step_samples
        count = None
        if part.count is not None:
            count = (part.count - 1) * spec.step_samples + spec.window_samples
        blocks = stream_range(info, rate, first, count, stats=decode, source=source)
    for batch in infer_blocks(blocks, model, params, batch_size, stats, counted, part):
        # With an audio speed, the model's time runs 1/speed times the file's.
        yield batch if speed == 1.0 else batch.in_file_time(speed, info.duration_s)
    if part.count is not None:
        if stats.windows < part.count:
            raise PartShort(
                f"the audio ends before {span_s[1]:.1f} s although the header says "
                f"{info.duration_s:.2f} s",
                path=info.path,
            )
        if progress is not None and span_s[1] - span_s[0] > seen:
            progress(span_s[1] - span_s[0] - seen)
        return
    stats.decoded_s = decode.end_frame / info.sample_rate
    stats.warnings.extend(info.warnings)
    if progress is not None and span_s[1] - span_s[0] > seen:
        progress(span_s[1] - span_s[0] - seen)
    if info.duration_s - stats.decoded_s > TRUNCATION_TOLERANCE_S:
        stats.warnings.append(
            f"truncated: header says {info.duration_s:.2f} s, decoded {stats.decoded_s:.2f} s"
        )


def part_seconds(part: Part, spec: WindowSpec, duration_s: float) -> tuple[float, float]:
    """The stretch of the recording a part accounts for in the progress bar."""
    start = part.first * spec.step_samples / spec.sample_rate
    if part.count is None:
        return start, duration_s
    return start, (part.first + part.count) * spec.step_samples / spec.sample_rate


def rms_dbfs(window: Window) -> float:
    """Level of the window's real audio (padding excluded), in dB re full scale."""
    power = float(np.mean(np.square(window.samples[: max(1, window.valid)], dtype=np.float64)))
    return max(SILENCE_FLOOR_DB, 10.0 * np.log10(power)) if power > 0 else SILENCE_FLOOR_DB


def _batches(
    windows: Iterator[Window], batch_size: int, band: WindowFilter
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(start_s, end_s, rms_dbfs, filtered samples) per batch; runs in the prefetch thread."""
    while batch := list(islice(windows, batch_size)):
        yield (
            np.array([w.start_s for w in batch]),
            np.array([w.end_s for w in batch]),
            np.array([rms_dbfs(w) for w in batch], dtype=np.float32),
            np.stack([band.apply(w.samples) for w in batch]),
        )
