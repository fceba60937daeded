"""The real BirdNET V2.4 model, loaded once per session (tests in this folder need it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bdisc.audio.reader import probe
from bdisc.model.birdnet import BirdNetV24
from bdisc.pipeline.inference import StreamStats, infer_recording
from bdisc.pipeline.params import AnalysisParams
from bdisc.pipeline.runner import ModelFactory


@pytest.fixture(scope="session")
def model() -> BirdNetV24:
    return BirdNetV24(threads=2)


@pytest.fixture(scope="session")
def factory(model: BirdNetV24) -> ModelFactory:
    """In-process runs reuse the session's model instead of loading their own."""
    return lambda threads: model


def run_windows(
    model: BirdNetV24, path: Path, params: AnalysisParams, batch_size: int = 8
) -> Iterator[tuple[float, float, np.ndarray, np.ndarray]]:
    """(start_s, end_s, logits, embedding) per window of one recording."""
    stats = StreamStats()
    for batch in infer_recording(probe(path), model, params, batch_size, stats):
        for i in range(len(batch)):
            yield (
                float(batch.start_s[i]),
                float(batch.end_s[i]),
                batch.logits[i],
                batch.embeddings[i],
            )
