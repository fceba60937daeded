"""Recordings whose outputs would share file names (``x.flac`` and ``x.mp3``): the first
in sorted order keeps the name, each other one is a per-recording NameClash, and state
records that such a clash made untrustworthy are forgotten."""

from __future__ import annotations

import shutil
from pathlib import Path

from bdisc.errors import NameClash
from bdisc.outputs.embeddings import embeddings_path
from bdisc.outputs.names import name_clash, name_clashes, output_stem
from bdisc.pipeline.jobs import recording_base
from bdisc.pipeline.resume import HashCache, forget_clashing, save_state, state_path
from bdisc.pipeline.runner import collect_tasks, named_inputs
from bdisc.pipeline.summary import FileOutcome


def test_outputs_are_named_by_the_path_without_its_extension() -> None:
    assert output_stem("site/x.flac").as_posix() == "site/x"
    assert output_stem(Path("x.y.WAV")).as_posix() == "x.y"
    out = Path("/out")
    assert embeddings_path(out, "site/x.flac") == out / "site" / "x.embeddings.parquet"
    assert recording_base(out, Path("site/x.mp3")) == out / "site" / "x"
    assert recording_base(out, Path("site/x.mp3"), "embeddings") == out / "embeddings/site/x"


def test_the_first_in_sorted_order_keeps_the_name() -> None:
    rels = ["site/x.mp3", "site/x.ogg", "site/x.flac", "other/x.mp3", "site/y.wav"]
    assert name_clashes(rels) == {"site/x.mp3": "site/x.flac", "site/x.ogg": "site/x.flac"}
    # letter case counts as no difference: the output disk may not tell them apart
    assert name_clashes(["a/rec.wav", "a/REC.WAV", "A/rec.flac"]) == {
        "a/REC.WAV": "A/rec.flac",
        "a/rec.wav": "A/rec.flac",
    }
    # a recording named twice (overlapping inputs) is one recording, not a clash
    assert name_clashes(["x.wav", "x.wav"]) == {}
    assert name_clashes(["x.wav", "x.wav.flac", "x"]) == {"x.wav": "x"}


def test_the_error_names_both_recordings_and_what_to_do() -> None:
    exc = name_clash("site/x.mp3", "site/x.flac")
    assert isinstance(exc, NameClash) and exc.context["kept"] == "site/x.flac"
    assert exc.message.startswith(
        "site/x.mp3 has the same name as site/x.flac apart from its extension: their "
        "outputs would overwrite each other, so only site/x.flac is processed"
    )
    assert "rename one" in exc.message
    assert "apart from its letter case:" in name_clash("X.wav", "x.wav").message
    assert "apart from its letter case and extension:" in name_clash("x.mp3", "X.flac").message


def test_a_run_plans_the_first_and_refuses_the_others(audio_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "site").mkdir(parents=True)
    shutil.copyfile(audio_dir / "soundscape.flac", root / "site" / "x.flac")
    shutil.copyfile(audio_dir / "soundscape.mp3", root / "site" / "x.mp3")
    shutil.copyfile(audio_dir / "pica_pica_30s.flac", root / "site" / "Y.FLAC")
    shutil.copyfile(audio_dir / "silence_10s.mp3", root / "site" / "y.mp3")
    (root / "elsewhere").mkdir()
    shutil.copyfile(audio_dir / "pica_pica_30s.flac", root / "elsewhere" / "x.flac")
    # the same file named twice is planned once
    named = named_inputs([root, root / "site" / "x.flac"])
    rels = [rel.as_posix() for _, rel in named]
    assert sorted(rels) == [
        "elsewhere/x.flac",
        "site/Y.FLAC",
        "site/x.flac",
        "site/x.mp3",
        "site/y.mp3",
    ]
    failed: list[FileOutcome] = []
    tasks = collect_tasks(named, HashCache(tmp_path / "out"), failed, name_clashes(rels))
    assert sorted(t.rel.as_posix() for t in tasks) == [
        "elsewhere/x.flac",
        "site/Y.FLAC",
        "site/x.flac",
    ]
    assert {(Path(f.path).name, f.status, f.error) for f in failed} == {
        ("x.mp3", "failed", "NameClash"),
        ("y.mp3", "failed", "NameClash"),
    }
    by_name = {Path(f.path).name: f.message for f in failed}
    assert by_name["x.mp3"].startswith("site/x.mp3 has the same name as site/x.flac apart ")
    assert by_name["y.mp3"].startswith(
        "site/y.mp3 has the same name as site/Y.FLAC apart from its letter case and extension"
    )


def test_records_a_clash_made_untrustworthy_are_forgotten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    clashes = {"site/x.mp3": "site/x.flac", "site/y.mp3": "site/y.flac"}
    # x.mp3 was run before its clash was refused: it wrote x.flac's files, so neither
    # record says what they hold; y.mp3 never was: y.flac's record stands
    for rel in ("site/x.mp3", "site/x.flac", "site/y.flac"):
        save_state(state_path(out, "embed", Path(rel)), {"content_hash": rel})
    other_job = state_path(out, "analyze", Path("site/x.flac"))
    save_state(other_job, {"content_hash": "x"})
    forget_clashing(out, "embed", clashes)
    assert not state_path(out, "embed", Path("site/x.mp3")).exists()
    assert not state_path(out, "embed", Path("site/x.flac")).exists()
    assert state_path(out, "embed", Path("site/y.flac")).is_file()
    assert other_job.is_file()  # another job's files are another run's business
