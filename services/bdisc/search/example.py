"""The query of a search by example: the mean of the unit embeddings of an example, either
a span of a recording embedded now with the index's own settings, or a stored window."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.audio.bandpass import Bandpass, WindowFilter
from bdisc.audio.reader import probe
from bdisc.audio.segments import read_segment
from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.model.port import AcousticModel
from bdisc.params import AnalysisParams
from bdisc.search.stored_windows import read_windows
from bdisc.search.window_index import WindowIndex, unit_rows

# A stored window named by its start matches within this many seconds (times are written
# with %g in the sheets, to the millisecond).
START_TOLERANCE_S = 0.0015


@dataclass(frozen=True)
class Example:
    """What was searched for: the query vector and the windows it is the mean of."""

    vector: np.ndarray  # float32 (dim,), unit length
    recording: str
    spans: tuple[tuple[float, float], ...]  # the example's windows, in the recording's seconds


def mean_query(vectors: np.ndarray) -> np.ndarray:
    """The mean direction of the rows (each scaled to unit length first), unit length."""
    mean = unit_rows(vectors).mean(axis=0, keepdims=True)
    return np.asarray(unit_rows(mean)[0], dtype=np.float32)


def example_windows(
    start_s: float, end_s: float, window_s: float, step_s: float
) -> list[tuple[float, float]]:
    """Windows of ``window_s`` covering [start_s, end_s]: one centred on a span no longer
    than a window (not before 0), else windows every ``step_s`` from the start, the last
    one ending at the span's end."""
    if end_s <= start_s or start_s < 0:
        raise ConfigError(f"an example needs 0 <= start < end, got {start_s:g} to {end_s:g}")
    if end_s - start_s <= window_s:
        first = max(0.0, (start_s + end_s - window_s) / 2)
        return [(first, first + window_s)]
    starts = list(np.arange(start_s, end_s - window_s + 1e-9, step_s))
    if starts[-1] + window_s < end_s - 1e-9:
        starts.append(end_s - window_s)
    return [(float(s), float(s) + window_s) for s in starts]


def params_of(provenance: dict[str, Any]) -> AnalysisParams:
    """The window settings the index's embeddings were made with."""
    try:
        return AnalysisParams(
            overlap_s=float(provenance["overlap_s"]),
            min_len_s=float(provenance["min_len_s"]),
            bandpass=Bandpass(
                float(provenance["bandpass_fmin"]), float(provenance["bandpass_fmax"])
            ),
            audio_speed=float(provenance.get("audio_speed", 1.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IncompatibleArtifact(f"the index records no usable window settings: {exc}") from exc


def embed_example(
    audio: Path, start_s: float, end_s: float, model: AcousticModel, provenance: dict[str, Any]
) -> Example:
    """Embed a span of a recording the way the index's windows were embedded (same model,
    band-pass and audio speed); refuses a model other than the index's."""
    params = params_of(provenance)
    mine = params.window_provenance(model.info)
    if mine != provenance:
        differs = sorted(k for k in set(mine) | set(provenance) if mine.get(k) != provenance.get(k))
        raise IncompatibleArtifact(
            f"the stored embeddings were made with other settings ({', '.join(differs)}) than "
            "this model gives: name a stored window (--window) instead",
            differs=differs,
        )
    info = probe(audio)
    if start_s >= info.duration_s:
        raise ConfigError(
            f"{audio} is {info.duration_s:.1f} s long; the example starts at {start_s:g} s"
        )
    rate, speed = model.info.sample_rate, params.audio_speed
    window_s = model.info.window_s * speed  # a window in the recording's seconds
    step_s = (model.info.window_s - params.overlap_s) * speed
    spans = example_windows(start_s, min(end_s, info.duration_s), window_s, step_s)
    # Samples taken as recorded at rate * speed, as the pipeline plays them.
    samples, _ = read_segment(audio, spans[0][0], spans[-1][1], round(rate / speed))
    size = round(rate * model.info.window_s)
    band = WindowFilter(params.bandpass, rate)
    batch = []
    for s, _ in spans:
        first = round((s - spans[0][0]) / speed * rate)
        window = np.zeros(size, dtype=np.float32)
        piece = samples[first : first + size]
        window[: piece.size] = piece
        batch.append(band.apply(window))
    vectors = model.infer(np.stack(batch)).embeddings
    return Example(mean_query(vectors), str(audio), tuple(spans))


def stored_example(index: WindowIndex, recording: str, start_s: float) -> Example:
    """A window already in the index, named by its recording (as the embeddings name it,
    or the end of that path) and start time; its vector is read from its embeddings file."""
    table = index.table
    names = {e.recording for e in index.manifest.files}
    wanted = recording if recording in names else _by_suffix(names, recording)
    rows = np.flatnonzero(
        (table.recording == wanted) & (np.abs(table.start_s - start_s) <= START_TOLERANCE_S)
    )
    if rows.size == 0:
        raise NotFound(f"no stored window of {wanted} starts at {start_s:g} s")
    entry = index.entry(int(rows[0]))
    path = index.embeddings_folder / entry.path
    stored = read_windows(path)
    i = int(rows[0]) - entry.first_id
    return Example(
        mean_query(stored.vectors[i : i + 1]),
        wanted,
        ((float(stored.start_s[i]), float(stored.end_s[i])),),
    )


def _by_suffix(names: set[str], recording: str) -> str:
    tail = recording.replace("\\", "/").strip("/")
    found = sorted(n for n in names if n == tail or n.endswith("/" + tail))
    if len(found) != 1:
        raise NotFound(
            f"{recording!r} names {'no' if not found else len(found)} stored recordings"
            + (f": {', '.join(found[:5])}" if found else "")
        )
    return found[0]
