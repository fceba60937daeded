"""Re-running skips what is done; any change to content or parameters recomputes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import soundfile as sf

from bdisc.model.birdnet import BirdNetV24
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig

from .helpers import CountingModel, write_clip


@pytest.fixture
def folder(tmp_path: Path, audio_dir: Path) -> Path:
    root = tmp_path / "rec"
    write_clip(audio_dir / "soundscape.flac", root / "a.wav", 12.0)
    write_clip(audio_dir / "pica_pica_30s.flac", root / "b.flac", 9.0)
    return root


def combined(out: Path) -> list[dict[str, str]]:
    with (out / "BirdNET_CombinedTable.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.model
def test_analyze_resumes(folder: Path, tmp_path: Path, model: BirdNetV24) -> None:
    counter = CountingModel(model)
    out = tmp_path / "out"
    config = RunConfig(out, AnalysisParams(), progress=False)
    first = api.analyze([folder], config, factory=lambda t: counter)
    assert (first.done, counter.windows) == (2, 4 + 3)
    table = combined(out)

    again = api.analyze([folder], config, factory=lambda t: counter)
    assert (again.done, again.skipped, counter.windows) == (0, 2, 7)  # nothing recomputed
    assert combined(out) == table  # combined table rebuilt from the saved state

    # A changed parameter recomputes everything ...
    api.analyze(
        [folder],
        RunConfig(out, AnalysisParams(min_conf=0.2), progress=False),
        factory=lambda t: counter,
    )
    assert counter.windows == 14
    assert all(float(r["Confidence"]) >= 0.2 for r in combined(out))

    # ... changed content recomputes just that file, even with the same name and size.
    data, rate = sf.read(folder / "a.wav", dtype="int16")
    sf.write(folder / "a.wav", data[::-1].copy(), rate, subtype="PCM_16")
    result = api.analyze(
        [folder],
        RunConfig(out, AnalysisParams(min_conf=0.2), progress=False),
        factory=lambda t: counter,
    )
    assert (result.done, result.skipped, counter.windows) == (1, 1, 18)

    # --force recomputes regardless.
    api.analyze(
        [folder],
        RunConfig(out, AnalysisParams(min_conf=0.2), force=True, progress=False),
        factory=lambda t: counter,
    )
    assert counter.windows == 25


@pytest.mark.model
def test_deleted_output_is_recomputed(folder: Path, tmp_path: Path, model: BirdNetV24) -> None:
    counter = CountingModel(model)
    out = tmp_path / "out"
    config = RunConfig(out, AnalysisParams(), progress=False)
    api.analyze([folder], config, ["csv", "table"], factory=lambda t: counter)
    (out / "a.BirdNET.selection.table.txt").unlink()
    again = api.analyze([folder], config, ["csv", "table"], factory=lambda t: counter)
    assert (again.done, again.skipped) == (1, 1)
    assert (out / "a.BirdNET.selection.table.txt").is_file()


@pytest.mark.model
def test_embed_resumes_and_failed_files_are_retried(
    folder: Path, tmp_path: Path, model: BirdNetV24, audio_dir: Path
) -> None:
    counter = CountingModel(model)
    out = tmp_path / "out"
    bad = folder / "c.wav"
    bad.write_text("not yet a recording")
    config = RunConfig(out, AnalysisParams(), progress=False)
    first = api.embed([folder], config, factory=lambda t: counter)
    assert (first.done, first.failed) == (2, 1)
    write_clip(audio_dir / "soundscape.flac", bad, 6.0)  # the user fixes the file
    second = api.embed([folder], config, factory=lambda t: counter)
    assert (second.done, second.skipped, second.failed) == (1, 2, 0)
    assert counter.windows == 7 + 2
