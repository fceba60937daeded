"""Embeddings in Parquet: schema, values, provenance, and refusal to mix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bdisc.errors import IncompatibleArtifact
from bdisc.model.birdnet import BirdNetV24
from bdisc.outputs.embeddings import file_metadata, read_embeddings
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import ModelFactory, RunConfig

from .helpers import run_windows, write_clip


@pytest.mark.model
def test_embeddings_parquet(
    tmp_path: Path, audio_dir: Path, model: BirdNetV24, factory: ModelFactory
) -> None:
    src = write_clip(audio_dir / "soundscape.flac", tmp_path / "in" / "site" / "r.wav", 15.0)
    out = tmp_path / "out"
    api.embed(
        [tmp_path / "in"],
        RunConfig(out, AnalysisParams(), progress=False),
        text_export=True,
        factory=factory,
    )
    path = out / "embeddings" / "site" / "r.embeddings.parquet"
    table = pq.read_table(path)
    assert table.column_names == [
        "recording",
        "start_s",
        "end_s",
        "embedding",
        "top_labels",
        "top_scores",
        "rms_dbfs",
    ]
    assert table.num_rows == 5
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[1024]"
    assert table.column("recording").to_pylist() == ["site/r.wav"] * 5
    assert table.column("start_s").to_pylist() == [0.0, 3.0, 6.0, 9.0, 12.0]
    # The stored vectors are the model's embeddings for the same windows.
    direct = [w[3] for w in run_windows(model, src, AnalysisParams())]
    stored = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(stored, np.stack(direct), atol=1e-5)
    top = table.column("top_labels").to_pylist()[0]
    assert top[0] == "Poecile atricapillus_Black-capped Chickadee" and len(top) == 5
    assert table.column("top_scores").to_pylist()[0][0] == pytest.approx(0.8141, abs=1e-3)
    meta = file_metadata(path)
    assert meta["window"]["model"] == "BirdNET_GLOBAL_6K_V2.4"
    assert meta["window"]["sample_rate"] == 48_000 and meta["window"]["overlap_s"] == 0.0
    assert meta["recording"]["channels"] == 1 and len(meta["recording"]["content_hash"]) == 32
    # BirdNET-Analyzer's text export: start, end, 1024 comma-separated values.
    lines = (out / "embeddings" / "site" / "r.birdnet.embeddings.txt").read_text().splitlines()
    start, end, values = lines[1].split("\t")
    assert (start, end) == ("3.0", "6.0") and len(values.split(",")) == 1024


@pytest.mark.model
def test_mixing_different_windows_is_refused(
    tmp_path: Path, audio_dir: Path, factory: ModelFactory
) -> None:
    src = write_clip(audio_dir / "soundscape.flac", tmp_path / "in" / "r.wav", 9.0)
    a, b = tmp_path / "a", tmp_path / "b"
    api.embed([src], RunConfig(a, AnalysisParams(), progress=False), factory=factory)
    api.embed([src], RunConfig(b, AnalysisParams(overlap_s=1.5), progress=False), factory=factory)
    table, provenance = read_embeddings([a])
    assert table.num_rows == 3 and provenance["overlap_s"] == 0.0
    assert read_embeddings([b])[0].num_rows == 6  # 0, 1.5, ... 6 and the tail at 7.5 s
    with pytest.raises(IncompatibleArtifact, match="overlap_s"):
        read_embeddings([a, b])


@pytest.mark.model
def test_window_levels_tell_silence_from_sound(
    tmp_path: Path, audio_dir: Path, factory: ModelFactory
) -> None:
    out = tmp_path / "out"
    inputs = [audio_dir / "silence_10s.mp3", audio_dir / "pica_pica_30s.flac"]
    api.embed(inputs, RunConfig(out, AnalysisParams(), progress=False), factory=factory)
    silence = pq.read_table(out / "embeddings" / "silence_10s.embeddings.parquet")
    magpie = pq.read_table(out / "embeddings" / "pica_pica_30s.embeddings.parquet")
    assert max(silence.column("rms_dbfs").to_pylist()) < -75  # MP3 dither only
    levels = magpie.column("rms_dbfs").to_pylist()
    assert all(-60 < level < 0 for level in levels)
    assert min(levels) - max(silence.column("rms_dbfs").to_pylist()) > 20
