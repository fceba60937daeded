"""Every parameter that changes what a run computes, and the keys derived from them.

Two keys drive resume and provenance:
- ``window_key``: what the model saw (model file, rate, window, overlap, min length,
  band-pass). Embeddings made under one window key are comparable with each other.
- ``score_key``: the window key plus how scores become detections (sigmoid,
  sensitivity, minimum confidence, species filter). Detections depend on it.
Batch size, workers and threads change speed, never results, so they are in neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bdisc.audio.bandpass import Bandpass
from bdisc.audio.windows import WindowSpec
from bdisc.errors import ConfigError
from bdisc.model.location import validate_location
from bdisc.model.port import ModelInfo


def stable_hash(value: Any, length: int = 16) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class AnalysisParams:
    overlap_s: float = 0.0
    min_len_s: float = 1.0
    bandpass: Bandpass = field(default_factory=Bandpass)
    # BirdNET-Analyzer 2.x's sensitivity: 0.5..1.5, higher = more detections; shifts the
    # logits by (s - 1) * 10 before the sigmoid.
    sensitivity: float = 1.0
    # BirdNET-Analyzer 1.x's, BirdNET-Pi's and the `birdnet` package's sigmoid slope
    # (their "sigmoid sensitivity", 0.5..1.5; BirdNET-Pi's sensitivity s gives 2 - s).
    sigmoid_slope: float = 1.0
    apply_sigmoid: bool = True
    min_conf: float = 0.1
    # Species filter: label entries (full label, scientific or common name) ...
    species: tuple[str, ...] | None = None
    # ... and/or a place and week for BirdNET's metadata model.
    lat: float | None = None
    lon: float | None = None
    week: int = -1
    location_threshold: float = 0.03
    # How many of the best labels each embedding row carries.
    top_k: int = 5
    # Report the n best labels of every window whatever their score (min_conf is then
    # ignored, as BirdNET-Analyzer's --top_n).
    top_n: int | None = None
    # Playback speed of the audio given to the model: 0.1 makes a 256-kHz bat recording a
    # 25.6-kHz one (BirdNET-Analyzer's --audio_speed). Window times stay in file time.
    audio_speed: float = 1.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.sensitivity <= 1.5:
            raise ConfigError(f"sensitivity must be in [0.5, 1.5], got {self.sensitivity}")
        if not 0.5 <= self.sigmoid_slope <= 1.5:
            raise ConfigError(f"sigmoid slope must be in [0.5, 1.5], got {self.sigmoid_slope}")
        if self.sigmoid_slope != 1.0 and self.sensitivity != 1.0:
            raise ConfigError(
                "sensitivity (BirdNET-Analyzer 2.x's scale) and sigmoid slope (1.x's and "
                "BirdNET-Pi's) are alternatives: give one of them"
            )
        if self.top_n is not None and not 1 <= self.top_n <= 100:
            raise ConfigError(f"top-n must be 1 to 100, got {self.top_n}")
        if not 0.01 <= self.audio_speed <= 100.0:
            raise ConfigError(f"audio speed must be in [0.01, 100], got {self.audio_speed}")
        if self.apply_sigmoid and not 0.0 <= self.min_conf < 1.0:
            raise ConfigError(f"minimum confidence must be in [0, 1), got {self.min_conf}")
        if (self.lat is None) != (self.lon is None):
            raise ConfigError("give both --lat and --lon, or neither")
        if self.lat is not None and self.lon is not None:
            validate_location(self.lat, self.lon, self.week)
        if not 0.0 <= self.location_threshold < 1.0:
            raise ConfigError(
                f"location threshold must be in [0, 1), got {self.location_threshold}"
            )
        if not 1 <= self.top_k <= 100:
            raise ConfigError(f"top-k must be 1 to 100, got {self.top_k}")
        self.window_spec(48_000, 3.0)  # validates overlap and min length

    @property
    def logit_shift(self) -> float:
        """BirdNET-Analyzer 2.x adds (sensitivity - 1) * 10 to every logit."""
        return (self.sensitivity - 1.0) * 10.0

    @property
    def uses_location(self) -> bool:
        return self.lat is not None and self.lon is not None

    def window_spec(self, sample_rate: int, window_s: float) -> WindowSpec:
        return WindowSpec(sample_rate, window_s, self.overlap_s, self.min_len_s)

    def window_provenance(self, model: ModelInfo) -> dict[str, Any]:
        return {
            "model": model.name,
            "model_version": model.version,
            "model_precision": model.precision,
            "model_sha256": model.sha256,
            "sample_rate": model.sample_rate,
            "window_s": model.window_s,
            "overlap_s": self.overlap_s,
            "min_len_s": self.min_len_s,
            "bandpass_fmin": self.bandpass.fmin,
            "bandpass_fmax": self.bandpass.fmax,
            **({"audio_speed": self.audio_speed} if self.audio_speed != 1.0 else {}),
            # With overlap, BirdNET-Analyzer 2.4's rule adds padded tail windows (window
            # files made before it lack them, so they are not mixed with these).
            **({"tail_windows": "birdnet-analyzer-2.4"} if self.overlap_s > 0 else {}),
        }

    def score_provenance(self, model: ModelInfo) -> dict[str, Any]:
        return {**self.window_provenance(model), **self.scoring_provenance()}

    def scoring_provenance(self) -> dict[str, Any]:
        """How logits became scores (without the window settings)."""
        return {
            "apply_sigmoid": self.apply_sigmoid,
            "sensitivity": self.sensitivity,
            # 2.x's logit shift; before, sensitivity meant 1.x's slope (same at 1.0).
            **({"sensitivity_scale": "logit-shift"} if self.sensitivity != 1.0 else {}),
            **({"sigmoid_slope": self.sigmoid_slope} if self.sigmoid_slope != 1.0 else {}),
            **({"top_n": self.top_n} if self.top_n is not None else {}),
            "min_conf": self.min_conf,
            "species": list(self.species) if self.species is not None else None,
            "lat": self.lat,
            "lon": self.lon,
            "week": self.week,
            "location_threshold": self.location_threshold,
            "top_k": self.top_k,
        }

    def window_key(self, model: ModelInfo) -> str:
        return stable_hash(self.window_provenance(model))

    def score_key(self, model: ModelInfo) -> str:
        return stable_hash(self.score_provenance(model))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisParams:
        """The inverse of ``as_dict`` (as carried in messages and job records)."""
        values = dict(data)
        if isinstance(values.get("bandpass"), dict):
            values["bandpass"] = Bandpass(**values["bandpass"])
        if values.get("species") is not None:
            values["species"] = tuple(values["species"])
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown analysis parameters: {', '.join(sorted(unknown))}")
        return cls(**values)
