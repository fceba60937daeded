from __future__ import annotations

from pathlib import Path

from bdisc.service.settings import ServiceSettings


class TrainingSettings(ServiceSettings):
    model_dir: Path | None = None  # the BirdNET model (custom classifier export, examples)
