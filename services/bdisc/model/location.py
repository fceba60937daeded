"""Species expected at a place and week, from BirdNET's metadata model (as BirdNET-Analyzer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bdisc.errors import ConfigError
from bdisc.model.birdnet import META_MODEL_FILE, _runtime, default_model_dir


def validate_location(lat: float, lon: float, week: int) -> None:
    if not -90.0 <= lat <= 90.0:
        raise ConfigError(f"latitude must be in [-90, 90], got {lat}")
    if not -180.0 <= lon <= 180.0:
        raise ConfigError(f"longitude must be in [-180, 180], got {lon}")
    if week != -1 and not 1 <= week <= 48:
        raise ConfigError(f"week must be 1..48 (4 per month) or -1 for all year, got {week}")


def location_scores(lat: float, lon: float, week: int, model_dir: Path | None = None) -> np.ndarray:
    """Occurrence score per label (float32, n_classes) for this place and week."""
    validate_location(lat, lon, week)
    path = (model_dir or default_model_dir()) / META_MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"BirdNET metadata model missing: {path}")
    interpreter_cls, _ = _runtime()
    interpreter = interpreter_cls(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(
        interpreter.get_input_details()[0]["index"],
        np.array([[lat, lon, week]], dtype=np.float32),
    )
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return np.asarray(out[0], dtype=np.float32)


def expected_species(
    labels: list[str], lat: float, lon: float, week: int, threshold: float, model_dir: Path | None
) -> list[tuple[str, float]]:
    """(label, occurrence score) of the species expected here and then, most likely first
    (BirdNET-Analyzer's ``species`` command: scores >= threshold, ties in label order)."""
    scores = location_scores(lat, lon, week, model_dir)
    if scores.shape[0] != len(labels):
        raise ConfigError("metadata model and audio model have different label sets")
    kept = [(label, float(s)) for label, s in zip(labels, scores, strict=True) if s >= threshold]
    return sorted(kept, key=lambda pair: -pair[1])
