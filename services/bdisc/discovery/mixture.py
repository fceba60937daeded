"""Labelled field-like mixtures: real calls placed into real background at known times.

A discovery method is only as good as what it finds in audio that looks like a
deployment's, so the benchmark (``bench/discovery_quality.py``) and its reduced test build
deployments the way a recorder would hear them:

- background beds made of random stretches of real noise recordings (a deployment keeps
  its own kind of background, as a site does), the majority of every recording;
- calls of several sound types at **random times** (they straddle window edges), at
  signal-to-noise ratios drawn from ``snr_db``, with uneven abundance: some types are
  common, some have a handful of calls in a whole run, some are heard at one site only;
- two variants: ``shared``, the same individual (source recording) of a type at every
  site, and ``distinct``, a different individual per site where the sources allow.

Everything is drawn from one seeded generator: same sources and seed, same audio. The
truth is an event table (file, start, end, type, individual, SNR); ``window_truth`` turns
it into one truth per window with the benchmark's rule.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from bdisc.audio.segments import read_segment
from bdisc.errors import ConfigError

RATE = 48_000
BACKGROUND = "background"
Variant = Literal["shared", "distinct"]


@dataclass(frozen=True)
class Call:
    """One call in a source recording."""

    path: Path
    start_s: float
    end_s: float
    individual: str  # the animal (source recording or site) it comes from


@dataclass(frozen=True)
class SoundType:
    name: str
    calls: tuple[Call, ...]
    calls_per_run: int  # spread over the deployments it is heard at, at least one each
    sites: int | None = None  # number of deployments it is heard at (None: all)

    @property
    def individuals(self) -> list[str]:
        return sorted({c.individual for c in self.calls})


@dataclass(frozen=True)
class MixtureSpec:
    deployments: int = 3
    recordings: int = 5  # per deployment
    recording_s: float = 60.0
    snr_db: tuple[float, float] = (0.0, 20.0)
    variant: Variant = "distinct"
    seed: int = 1

    def __post_init__(self) -> None:
        if self.variant not in ("shared", "distinct"):
            raise ConfigError(f"variant must be shared or distinct, got {self.variant!r}")
        if self.deployments < 1 or self.recordings < 1 or self.recording_s < 3:
            raise ConfigError("a mixture needs deployments, recordings and >= 3 s each")


@dataclass(frozen=True)
class Event:
    folder: str
    file: str
    start_s: float
    end_s: float
    sound: str
    individual: str
    snr_db: float


EVENT_COLUMNS = ["folder", "file", "start_s", "end_s", "sound", "individual", "snr_db"]


@dataclass
class _Cache:
    audio: dict[tuple[Path, float, float], np.ndarray] = field(default_factory=dict)

    def get(self, path: Path, start_s: float = 0.0, end_s: float = 1e9) -> np.ndarray:
        key = (path, start_s, end_s)
        if key not in self.audio:
            samples, _ = read_segment(path, start_s, end_s, RATE)
            self.audio[key] = samples.astype(np.float32)
        return self.audio[key]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def _bed(beds: Sequence[Path], length: int, rng: np.random.Generator, cache: _Cache) -> np.ndarray:
    """``length`` samples of stretches of 2-6 s drawn from these beds (random start, gain
    within +-3 dB, 50-ms cross-fades), normalised to a fixed level: background with the
    character of its sources but no exact repeats."""
    fade = int(0.05 * RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(length + fade, dtype=np.float32)
    pos = 0
    while pos < length:
        src = cache.get(beds[int(rng.integers(len(beds)))])
        span = min(src.size, int(rng.uniform(2.0, 6.0) * RATE))
        at = int(rng.integers(0, src.size - span + 1))
        piece = src[at : at + span] / (_rms(src) + 1e-9) * 10 ** (rng.uniform(-3, 3) / 20)
        piece = piece.astype(np.float32)
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
        end = min(out.size, pos + piece.size)
        out[pos:end] += piece[: end - pos]
        pos += piece.size - fade
    return out[:length] * 0.02  # about -34 dBFS RMS: a quiet recorder's floor


def build(
    out_dir: Path,
    types: Sequence[SoundType],
    beds: Sequence[Sequence[Path]],
    spec: MixtureSpec,
) -> list[Event]:
    """Write ``spec.deployments`` folders of recordings into ``out_dir`` and return the
    events placed; deployment d draws its background from ``beds[d % len(beds)]``."""
    if not types or not beds:
        raise ConfigError("a mixture needs sound types and background beds")
    rng = np.random.default_rng(spec.seed)
    cache = _Cache()
    folders = [f"site{d + 1}" for d in range(spec.deployments)]
    n = int(spec.recording_s * RATE)
    audio = {
        (f, r): _bed(beds[d % len(beds)], n, rng, cache)
        for d, f in enumerate(folders)
        for r in range(spec.recordings)
    }
    busy: dict[tuple[str, int], list[tuple[int, int]]] = {k: [] for k in audio}
    events: list[Event] = []
    for t in types:
        individuals = t.individuals
        present = (
            list(range(spec.deployments))
            if t.sites is None or t.sites >= spec.deployments
            else sorted(rng.choice(spec.deployments, size=t.sites, replace=False).tolist())
        )
        first = int(rng.integers(len(individuals)))
        counts = np.ones(len(present), dtype=int)
        if t.calls_per_run > len(present):
            counts += rng.multinomial(
                t.calls_per_run - len(present), [1 / len(present)] * len(present)
            )
        for d, count in zip(present, counts.tolist(), strict=True):
            who = individuals[(first + (d if spec.variant == "distinct" else 0)) % len(individuals)]
            pool = [c for c in t.calls if c.individual == who]
            for _ in range(count):
                call = pool[int(rng.integers(len(pool)))]
                clip = cache.get(call.path, call.start_s, call.end_s)
                if clip.size < RATE // 20 or clip.size >= n:
                    continue
                placed = _place(busy, folders[d], spec.recordings, n, clip.size, rng)
                if placed is None:
                    continue
                rec, at = placed
                snr = float(rng.uniform(*spec.snr_db))
                bed = audio[(folders[d], rec)]
                gain = 10 ** (snr / 20) * _rms(bed[at : at + clip.size]) / _rms(clip)
                bed[at : at + clip.size] += clip * np.float32(gain)
                events.append(
                    Event(
                        folders[d],
                        _name(rec),
                        round(at / RATE, 4),
                        round((at + clip.size) / RATE, 4),
                        t.name,
                        who,
                        round(snr, 2),
                    )
                )
    for (folder, rec), samples in audio.items():
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        peak = float(np.abs(samples).max())
        sf.write(
            out_dir / folder / _name(rec),
            samples / max(1.0, peak / 0.99),
            RATE,
            subtype="PCM_16",
        )
    events.sort(key=lambda e: (e.folder, e.file, e.start_s))
    return events


def _name(rec: int) -> str:
    return f"20230601_{5 + rec // 60:02d}{rec % 60:02d}00.wav"


def _place(
    busy: dict[tuple[str, int], list[tuple[int, int]]],
    folder: str,
    recordings: int,
    n: int,
    size: int,
    rng: np.random.Generator,
) -> tuple[int, int] | None:
    """A random (recording, offset) where the call overlaps no other call."""
    for _ in range(50):
        rec = int(rng.integers(recordings))
        at = int(rng.integers(0, n - size))
        taken = busy[(folder, rec)]
        if all(at + size <= a or at >= b for a, b in taken):
            taken.append((at, at + size))
            return rec, at
    return None


def write_events(path: Path, events: Sequence[Event]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_COLUMNS)
        for e in events:
            writer.writerow([e.folder, e.file, e.start_s, e.end_s, e.sound, e.individual, e.snr_db])


def read_events(path: Path) -> list[Event]:
    with path.open(newline="") as f:
        return [
            Event(
                r["folder"],
                r["file"],
                float(r["start_s"]),
                float(r["end_s"]),
                r["sound"],
                r["individual"],
                float(r["snr_db"]),
            )
            for r in csv.DictReader(f)
        ]


def window_truth(
    events: Sequence[Event], folder: str, file: str, start_s: float, end_s: float
) -> str:
    """The sound type of the call that overlaps this window by at least min(1 s, half
    the call) (the largest overlap wins), else ``background``."""
    best, best_overlap = BACKGROUND, 0.0
    for e in events:
        if e.folder != folder or e.file != file:
            continue
        overlap = min(end_s, e.end_s) - max(start_s, e.start_s)
        if overlap >= min(1.0, (e.end_s - e.start_s) / 2) and overlap > best_overlap:
            best, best_overlap = e.sound, overlap
    return best


def energy_calls(
    path: Path,
    individual: str,
    min_s: float = 0.3,
    max_s: float = 2.8,
    band_hz: tuple[float, float] = (500.0, 12_000.0),
    rise_db: float = 10.0,
    bridge_s: float = 0.25,
) -> list[Call]:
    """Calls found by energy in a recording without labels: 20-ms frames whose energy in
    the band is ``rise_db`` above the recording's floor (its 10th percentile), gaps under
    ``bridge_s`` bridged, kept when at least ``min_s`` long; longer events (a toad's trill) are
    cut into consecutive calls of at most ``max_s``."""
    samples, rate = read_segment(path, 0.0, 1e9)
    spec = np.abs(np.fft.rfft(_frames(samples, int(0.02 * rate)), axis=1)) ** 2
    freqs = np.fft.rfftfreq(int(0.02 * rate), 1 / rate)
    band = (freqs >= band_hz[0]) & (freqs <= min(band_hz[1], rate / 2))
    level = 10 * np.log10(spec[:, band].sum(axis=1) + 1e-20)
    loud = level > np.percentile(level, 10) + rise_db
    calls, start, gap = [], None, 0
    for i, on in enumerate([*loud.tolist(), False]):
        if on:
            start = i if start is None else start
            gap = 0
        elif start is not None:
            gap += 1
            if gap * 0.02 >= bridge_s or i == loud.size:
                end = i - gap + 1
                s, e = start * 0.02, end * 0.02
                while e - s >= min_s:
                    calls.append(Call(path, s, min(e, s + max_s), individual))
                    s += max_s
                start, gap = None, 0
    return calls


def _frames(x: np.ndarray, size: int) -> np.ndarray:
    count = x.size // size
    return x[: count * size].reshape(count, size) * np.hanning(size)
