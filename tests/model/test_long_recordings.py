"""Long recordings in parts: every worker busy on one long file, with the windows,
scores and embeddings of processing it whole, bit for bit; resumable part by part."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import soxr

from bdisc.audio.reader import probe
from bdisc.model.birdnet import BirdNetV24
from bdisc.model.port import Inference
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.parts import plan_parts
from bdisc.pipeline.recording_task import RunConfig

from .helpers import CountingModel

MINUTES = 21  # parts of 10 minutes: 0-10, 10-20, 20-21 (with the tail)


@pytest.fixture(scope="module")
def long_folder(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> Path:
    """A 21-minute FLAC at 48 kHz and 16 minutes of it resampled to 44.1 kHz (a WAV)."""
    folder = tmp_path_factory.mktemp("long")
    audio, rate = sf.read(audio_dir / "soundscape.flac", dtype="float32")
    long = np.tile(audio, MINUTES // 2 + 1)[: MINUTES * 60 * rate]
    sf.write(folder / "dawn.flac", long, rate)
    dusk = soxr.resample(long[: 16 * 60 * rate], rate, 44_100)
    sf.write(folder / "dusk.wav", dusk, 44_100, subtype="FLOAT")
    return folder


def _tables(out: Path) -> dict[str, pq.Table]:
    return {
        p.name: pq.read_table(p).replace_schema_metadata(None)
        for p in sorted((out / "embeddings").glob("*.parquet"))
    }


@pytest.mark.model
@pytest.mark.slow
def test_parts_equal_the_whole_file(long_folder: Path, tmp_path: Path) -> None:
    params = AnalysisParams(overlap_s=1.5)
    spec = params.window_spec(48_000, 3.0)
    assert [p.key for p in plan_parts(probe(long_folder / "dawn.flac"), spec)] == [
        "0-400",
        "400-800",
        "800-end",
    ]
    base = RunConfig(tmp_path / "whole", params, workers=2, progress=False, split_long=False)
    api.embed([long_folder], base)
    parted = replace(base, out_dir=tmp_path / "parts", split_long=True)
    summary = api.embed([long_folder], parted)
    assert (summary.done, summary.failed) == (2, 0)
    whole, parts = _tables(tmp_path / "whole"), _tables(tmp_path / "parts")
    assert list(whole) == ["dawn.embeddings.parquet", "dusk.embeddings.parquet"]
    assert whole["dawn.embeddings.parquet"].num_rows == 840  # 21 min at 1.5 s, tail included
    assert whole["dusk.embeddings.parquet"].num_rows == 640
    for name, table in whole.items():
        assert parts[name].equals(table), name  # windows, embeddings, scores, order
    # The provisional parts are gone; analyze assembles its detections the same way.
    assert not (tmp_path / "parts" / ".bdisc" / "parts").exists()
    for split, out in ((False, "aw"), (True, "ap")):
        config = replace(base, out_dir=tmp_path / out, split_long=split, params=AnalysisParams())
        api.analyze([long_folder], config, ["csv"])
    for name in ("dawn.BirdNET.results.csv", "dusk.BirdNET.results.csv"):
        assert (tmp_path / "ap" / name).read_text() == (tmp_path / "aw" / name).read_text()


class FailingModel(CountingModel):
    """Fails once it has seen ``after`` windows (a crash in the middle of a long file)."""

    def __init__(self, inner: BirdNetV24, after: int) -> None:
        super().__init__(inner)
        self.after = after

    def infer(self, batch: np.ndarray) -> Inference:
        if self.windows + batch.shape[0] > self.after:
            raise RuntimeError("power cut")
        return super().infer(batch)


@pytest.mark.model
@pytest.mark.slow
def test_resume_goes_on_from_the_last_finished_part(
    long_folder: Path, tmp_path: Path, model: BirdNetV24
) -> None:
    config = RunConfig(tmp_path / "out", AnalysisParams(), workers=1, progress=False)
    dawn = long_folder / "dawn.flac"
    failing = FailingModel(model, after=300)  # part 1 (0-200) done, part 2 (200-400) not
    summary = api.embed([dawn], config, factory=lambda _threads: failing)
    assert summary.failed == 1
    counting = CountingModel(model)
    summary = api.embed([dawn], config, factory=lambda _threads: counting)
    assert (summary.done, summary.failed) == (1, 0)
    assert counting.windows == 420 - 200  # parts 2 and 3 only
    table = pq.read_table(tmp_path / "out" / "embeddings" / "dawn.embeddings.parquet")
    assert table.num_rows == 420
    assert table.column("start_s").to_pylist() == [3.0 * i for i in range(420)]
    # And once done, nothing is computed again.
    again = CountingModel(model)
    assert api.embed([dawn], config, factory=lambda _threads: again).skipped == 1
    assert again.windows == 0
