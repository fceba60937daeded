"""One run over every kind of odd input: each gets results or a clear per-file error."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import ModelFactory, RunConfig

from .helpers import copy, garble, truncate, write_clip


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("odd")
    scape = audio_dir / "soundscape.flac"
    copy(scape, root / "good" / "soundscape.flac")
    write_clip(scape, root / "good" / "stereo.wav", 9.0, channels=2)
    write_clip(scape, root / "good" / "eight_channels.wav", 6.0, channels=8)
    copy(audio_dir / "soundscape.mp3", root / "good" / "UPPER.MP3")
    (root / "good" / "linked.flac").symlink_to(audio_dir / "soundscape.ogg")
    copy(audio_dir / "ANPA-103486_first2s.wav", root / "edge" / "bat_256k.wav")
    copy(audio_dir / "silence_10s.mp3", root / "edge" / "silence.mp3")
    copy(audio_dir / "lbh_BR2-A1-1.wav", root / "edge" / "hermit_0.37s.wav")
    wav = write_clip(scape, root / "tmp" / "full.wav", 12.0)
    truncate(wav, root / "bad" / "truncated.wav", 0.5)
    wav.unlink()
    garble(scape, root / "bad" / "garbled.flac")
    (root / "bad" / "empty.wav").touch()
    (root / "bad" / "text.wav").write_text("not audio at all\n" * 50)
    write_clip(scape, root / "bad" / "zero_frames.wav", 0.0)
    (root / "bad" / "notes.csv").write_text("ignored: not an audio extension\n")
    return root


def read_errors(out: Path) -> dict[str, tuple[str, str]]:
    with (out / "errors.csv").open(newline="") as f:
        return {Path(r["path"]).name: (r["severity"], r["error"]) for r in csv.DictReader(f)}


@pytest.mark.model
def test_odd_inputs_each_get_results_or_a_clear_error(
    odd_folder: Path, tmp_path: Path, factory: ModelFactory
) -> None:
    out = tmp_path / "out"
    summary = api.analyze(
        [odd_folder],
        RunConfig(out, AnalysisParams(), progress=False),
        ["csv", "table"],
        factory=factory,
    )
    errors = read_errors(out)
    assert errors == {
        "garbled.flac": ("error", "CorruptAudio"),
        "empty.wav": ("error", "EmptyAudio"),
        "text.wav": ("error", "CorruptAudio"),
        "zero_frames.wav": ("error", "EmptyAudio"),
        "hermit_0.37s.wav": ("error", "TooShort"),
        "truncated.wav": ("warning", "truncated"),
    }
    assert summary.recordings == 13  # notes.csv is not audio and not counted
    assert summary.failed == 5 and summary.done == 8
    # Every readable recording has its result files, mirrored under the input tree.
    for rel in [
        "good/soundscape",
        "good/stereo",
        "good/eight_channels",
        "good/UPPER",
        "edge/bat_256k",
        "edge/silence",
        "bad/truncated",
    ]:
        assert (out / f"{rel}.BirdNET.results.csv").is_file(), rel
        assert (out / f"{rel}.BirdNET.selection.table.txt").is_file(), rel
    for rel in ["bad/garbled", "bad/empty", "bad/text", "edge/hermit_0.37s"]:
        assert not (out / f"{rel}.BirdNET.results.csv").exists()
    assert not list(out.rglob("*.tmp"))  # failed files leave no partial output
    # The truncated WAV is analysed as far as it goes (6 s of its 12 s: 2 windows).
    with (out / "bad/truncated.BirdNET.results.csv").open() as f:
        ends = {float(r["End (s)"]) for r in csv.DictReader(f)}
    assert ends and max(ends) <= 6.0
    # Silence: no detection above 0.1.
    with (out / "edge/silence.BirdNET.results.csv").open() as f:
        assert list(csv.DictReader(f)) == []
    # The stereo and 8-channel clips hear what the mono original has: the chickadee.
    for rel in ["good/stereo", "good/eight_channels"]:
        with (out / f"{rel}.BirdNET.results.csv").open() as f:
            first = next(csv.DictReader(f))
        assert first["Common name"] == "Black-capped Chickadee"


@pytest.mark.model
def test_short_clips_work_with_a_lower_min_len(
    odd_folder: Path, tmp_path: Path, factory: ModelFactory
) -> None:
    out = tmp_path / "out"
    summary = api.analyze(
        [odd_folder / "edge" / "hermit_0.37s.wav"],
        RunConfig(out, AnalysisParams(min_len_s=0.1, min_conf=0.0), progress=False),
        factory=factory,
    )
    assert summary.done == 1 and summary.windows == 1
    with (out / "hermit_0.37s.BirdNET.results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[0]["End (s)"] == "0.37"  # 0.368 s, at BirdNET-Analyzer's 2 decimals


@pytest.mark.model
def test_unsupported_file_named_explicitly_is_an_error(
    odd_folder: Path, tmp_path: Path, factory: ModelFactory
) -> None:
    out = tmp_path / "out"
    summary = api.analyze(
        [odd_folder / "bad" / "notes.csv", odd_folder / "missing.wav"],
        RunConfig(out, AnalysisParams(), progress=False),
        factory=factory,
    )
    assert summary.failed == 2
    assert read_errors(out) == {
        "notes.csv": ("error", "UnsupportedFormat"),
        "missing.wav": ("error", "NotFound"),
    }
