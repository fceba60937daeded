"""Decode any supported recording into a stream of mono float32 blocks at the model's rate.

Long recordings are never loaded whole: the file is read in blocks, mixed down to mono
(channel mean, as librosa and BirdNET-Analyzer do) and resampled with a streaming soxr
resampler, so memory stays bounded by the block size whatever the duration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from bdisc.audio.formats import AUDIO_EXTENSIONS, is_audio_path
from bdisc.errors import CorruptAudio, EmptyAudio, NotFound, UnsupportedFormat

# Upper bound on samples (all channels) decoded at once: 4 Mi float32 = 16 MiB.
MAX_BLOCK_SAMPLES = 4 * 1024 * 1024
BLOCK_SECONDS = 10.0
RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True)
class AudioInfo:
    """What the decoder says about a recording before we read it."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe(path: Path) -> AudioInfo:
    """Open the file's header; raise an AudioError subclass if it is no usable audio."""
    if not path.exists():
        raise NotFound(f"no such file: {path}", path=str(path))
    if not is_audio_path(path):
        raise UnsupportedFormat(
            f"not a supported audio file (extension {path.suffix or 'none'!r}; "
            f"supported: {', '.join(sorted(AUDIO_EXTENSIONS))})",
            path=str(path),
        )
    if path.stat().st_size == 0:
        raise EmptyAudio("file is empty (0 bytes)", path=str(path))
    return _read_header(str(path), str(path))


def probe_file(source: BinaryIO, name: str, size: int) -> AudioInfo:
    """``probe`` for an open file (an object in S3 read by ranges); ``name`` gives the
    extension and the path reported in errors."""
    if not is_audio_path(PurePosixPath(name)):
        raise UnsupportedFormat(
            f"not a supported audio file (extension {PurePosixPath(name).suffix or 'none'!r})",
            path=name,
        )
    if size == 0:
        raise EmptyAudio("file is empty (0 bytes)", path=name)
    return _read_header(source, name)


def _read_header(source: str | BinaryIO, name: str) -> AudioInfo:
    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise CorruptAudio(f"cannot decode audio header: {exc}", path=name) from exc
    if info.samplerate <= 0 or info.channels <= 0:
        raise CorruptAudio(
            f"invalid header: {info.samplerate} Hz, {info.channels} channels", path=name
        )
    if info.frames <= 0:
        raise EmptyAudio("recording has no audio frames", path=name)
    return AudioInfo(
        warnings=_header_warnings(str(info.extra_info)),
        path=name,
        format=str(info.format),
        subtype=str(info.subtype),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
    )


# libsndfile notes a data chunk that is larger than the file as "data : 1152000 (should be 575978)".
_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _header_warnings(extra_info: str) -> tuple[str, ...]:
    match = _SIZE_MISMATCH.search(extra_info)
    if match and int(match.group(2)) < int(match.group(1)):
        declared, present = int(match.group(1)), int(match.group(2))
        return (
            f"truncated: header declares {declared} bytes of audio, the file holds "
            f"{present} ({100 * present / declared:.0f}%); analysed what is there",
        )
    return ()


@dataclass
class DecodeStats:
    """Filled while streaming: how much audio the decoder really delivered."""

    frames_read: int = 0
    end_frame: int = 0  # the native frame the decoder reached (for a span: from its seek)


def stream_mono(
    info: AudioInfo,
    target_rate: int,
    *,
    stats: DecodeStats | None = None,
    block_seconds: float = BLOCK_SECONDS,
    speed: float = 1.0,
    source: BinaryIO | None = None,
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks of the recording resampled to ``target_rate``.

    ``speed`` plays the recording faster (> 1) or slower (< 1): its samples are taken
    as recorded at ``sample_rate * speed``, so a 256-kHz recording at speed 0.1 becomes
    a 25.6-kHz one, ten times longer, before resampling (BirdNET-Analyzer's audio speed).
    """
    if speed == 1.0 and uses_grid(info):
        yield from stream_range(info, target_rate, 0, None, stats=stats, source=source)
        return
    block = max(1, min(int(block_seconds * info.sample_rate), MAX_BLOCK_SAMPLES // info.channels))
    source_rate = info.sample_rate * speed
    resampler = (
        None
        if source_rate == target_rate
        else soxr.ResampleStream(
            source_rate, target_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )
    )
    try:
        with _open(info, source) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                n = data.shape[0]
                last = n < block
                if stats is not None:
                    stats.frames_read += n
                    stats.end_frame += n
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                mono = np.ascontiguousarray(mono, dtype=np.float32)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if mono.size:
                    yield mono
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        done = stats.frames_read / info.sample_rate if stats else 0.0
        raise CorruptAudio(f"decoding failed after {done:.1f} s: {exc}", path=info.path) from exc


# Audio decoded before and after a span so that the resampler's filter has settled at
# its edges: the span's samples then equal those of streaming the whole file.
SPAN_MARGIN_S = 1
# Long recordings are resampled on a grid of segments of this length, each on its own
# (with SPAN_MARGIN_S of audio on either side), so that any stretch of them can be
# decoded alone to the same samples, bit for bit, as when the whole file is read.
GRID_S = 600
# Formats that seek to the exact frame (MP3 does not).
EXACT_SEEK = frozenset({"WAV", "WAVEX", "W64", "RF64", "FLAC", "OGG", "AIFF", "CAF"})


def uses_grid(info: AudioInfo) -> bool:
    """Whether the recording is long enough, seekable and trusted enough to be read on
    the grid (and cut into parts)."""
    return (
        info.format.upper() in EXACT_SEEK and not info.warnings and info.duration_s >= 1.5 * GRID_S
    )


def stream_range(
    info: AudioInfo,
    target_rate: int,
    first: int,
    count: int | None,
    *,
    stats: DecodeStats | None = None,
    source: BinaryIO | None = None,
) -> Iterator[np.ndarray]:
    """Model-rate samples ``first`` to ``first + count`` (None: to the end) of a
    recording read on the grid: each grid segment is decoded from its own start (a
    margin before it), whatever stretch of it is wanted, so its samples never depend on
    where reading began."""
    segment = GRID_S * target_rate
    total = info.frames * target_rate // info.sample_rate
    last_segment = max(0, (total - 1) // segment)
    end = None if count is None else first + count
    pos = first
    for g in range(first // segment, last_segment + 1):
        start = g * segment
        if end is not None and start >= end:
            return
        stop = None if g == last_segment else start + segment
        if end is not None:
            stop = end if stop is None else min(stop, end)
        got = start
        length = None if stop is None else stop - start
        for block in stream_span(info, target_rate, start, length, stats=stats, source=source):
            lo = max(0, pos - got)
            got += block.size
            if lo < block.size:
                yield block[lo:]
                pos = got
        if stop is None or got < stop:
            return  # the end of the file


def span_aligned(info: AudioInfo, target_rate: int, first: int) -> bool:
    """Whether model-rate sample ``first`` falls on a native frame (spans start there)."""
    return (first * info.sample_rate) % target_rate == 0


def stream_span(
    info: AudioInfo,
    target_rate: int,
    first: int,
    count: int | None,
    *,
    stats: DecodeStats | None = None,
    block_seconds: float = BLOCK_SECONDS,
    source: BinaryIO | None = None,
) -> Iterator[np.ndarray]:
    """Mono float32 blocks of model-rate samples ``first`` to ``first + count`` (None: to
    the end), equal to those ``stream_mono`` yields for that span. Decoding starts a
    second early and goes on a second late, whose output is dropped: a span of a 24-h
    file costs its own length plus two seconds. ``first`` must be ``span_aligned``."""
    if not span_aligned(info, target_rate, first):
        raise ValueError(f"sample {first} at {target_rate} Hz is not a frame of {info.path}")
    native = info.sample_rate
    start_frame = first * native // target_rate
    pre = 0 if native == target_rate else min(start_frame, SPAN_MARGIN_S * native)
    drop = pre * target_rate // native
    wanted = None if count is None else drop + count
    block = max(1, min(int(block_seconds * native), MAX_BLOCK_SAMPLES // info.channels))
    resampler = (
        None
        if native == target_rate
        else soxr.ResampleStream(native, target_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    )
    produced = 0
    try:
        with _open(info, source) as f:
            f.seek(start_frame - pre)
            if stats is not None:
                stats.end_frame = start_frame - pre
            while wanted is None or produced < wanted:
                data = f.read(block, dtype="float32", always_2d=True)
                last = data.shape[0] < block
                if stats is not None:
                    stats.frames_read += data.shape[0]
                    stats.end_frame += data.shape[0]
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                mono = np.ascontiguousarray(mono, dtype=np.float32)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                lo = max(0, drop - produced)
                hi = mono.size if wanted is None else min(mono.size, wanted - produced)
                produced += mono.size
                if hi > lo:
                    yield mono[lo:hi]
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudio(
            f"decoding failed near {first / target_rate:.1f} s: {exc}", path=info.path
        ) from exc


def _open(info: AudioInfo, source: BinaryIO | None) -> sf.SoundFile:
    """The recording's decoder: from its path, or from an open file (an object in the
    store read by ranges), rewound for each decoder."""
    if source is None:
        return sf.SoundFile(info.path)
    source.seek(0)
    return sf.SoundFile(source)
