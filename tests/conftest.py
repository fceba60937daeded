"""Shared fixtures: test data paths and one BirdNET model per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
AUDIO = DATA / "audio"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO
