"""Two recordings that differ only in extension (``x.flac``, ``x.mp3``) would write the
same output files: the first in sorted order is processed, the other is a per-recording
NameClash in errors.csv, never a silent overwrite, never taken for done, never a crash."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bdisc.cli.main import main
from bdisc.discovery.api import DiscoverConfig, discover
from bdisc.discovery.clustering import ClusterParams
from bdisc.interop.hoplite_db import HopliteWriter, StoreSettings
from bdisc.model.birdnet import BirdNetV24
from bdisc.outputs.embeddings import file_metadata
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import ModelFactory, RunConfig

from .helpers import CountingModel, copy, write_clip

CLASH = (
    "site/x.mp3 has the same name as site/x.flac apart from its extension: their outputs "
    "would overwrite each other, so only site/x.flac is processed"
)


@pytest.fixture
def clashing(tmp_path: Path, audio_dir: Path) -> Path:
    """site/x.flac (30 s of magpie), site/x.mp3 (10 s of silence) and an unrelated z.wav."""
    root = tmp_path / "in"
    copy(audio_dir / "pica_pica_30s.flac", root / "site" / "x.flac")
    copy(audio_dir / "silence_10s.mp3", root / "site" / "x.mp3")
    write_clip(audio_dir / "soundscape.flac", root / "site" / "z.wav", 6.0)
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def refused(out: Path) -> list[tuple[str, str, str]]:
    """(file name, severity, error) of every row of errors.csv; checks the message."""
    rows = read_csv(out / "errors.csv")
    for r in rows:
        if r["error"] == "NameClash":
            assert r["message"].startswith(CLASH), r["message"]
    return [(Path(r["path"]).name, r["severity"], r["error"]) for r in rows]


def summary_of(out: Path) -> dict[str, float]:
    summary: dict[str, float] = json.loads((out / "run_summary.json").read_text())
    return summary


def alone(tmp_path: Path, recording: Path) -> Path:
    """A folder holding just this recording, as site/x.flac: what its outputs should be."""
    root = tmp_path / "alone"
    copy(recording, root / "site" / "x.flac")
    return root


def _plain(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


@pytest.mark.model
def test_embed_keeps_the_first_and_refuses_the_other(
    clashing: Path, tmp_path: Path, model: BirdNetV24, factory: ModelFactory
) -> None:
    counter = CountingModel(model)
    out = tmp_path / "out"
    config = RunConfig(out, AnalysisParams(), progress=False)
    first = api.embed([clashing], config, factory=lambda t: counter)
    assert (first.recordings, first.done, first.skipped, first.failed) == (3, 2, 0, 1)
    assert counter.windows == 10 + 2  # x.flac and z.wav; nothing of x.mp3
    assert refused(out) == [("x.mp3", "error", "NameClash")]
    assert summary_of(out)["failed"] == 1
    # x.flac's file is exactly what embedding x.flac alone gives
    reference = tmp_path / "reference"
    api.embed(
        [alone(tmp_path, clashing / "site" / "x.flac")],
        RunConfig(reference, AnalysisParams(), progress=False),
        factory=factory,
    )
    got = pq.read_table(out / "embeddings" / "site" / "x.embeddings.parquet")
    want = pq.read_table(reference / "embeddings" / "site" / "x.embeddings.parquet")
    assert got.column("recording").to_pylist() == ["site/x.flac"] * 10
    assert _plain(got).equals(_plain(want))
    meta = file_metadata(out / "embeddings" / "site" / "x.embeddings.parquet")
    assert meta["recording"]["source"] == str(clashing / "site" / "x.flac")
    # A second run computes nothing, and refuses x.mp3 again rather than skip it as done.
    second = api.embed([clashing], config, factory=lambda t: counter)
    assert (second.done, second.skipped, second.failed) == (0, 2, 1)
    assert counter.windows == 12
    assert refused(out) == [("x.mp3", "error", "NameClash")]
    assert sorted(p.name for p in (out / "embeddings" / "site").iterdir()) == [
        "x.embeddings.parquet",
        "z.embeddings.parquet",
    ]


@pytest.mark.model
def test_analyze_keeps_the_first_and_refuses_the_other(clashing: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["analyze", str(clashing), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(argv) == 1  # some recordings failed: the rest is done
    assert refused(out) == [("x.mp3", "error", "NameClash")]
    reference = tmp_path / "reference"
    only = alone(tmp_path, clashing / "site" / "x.flac")
    assert main(["analyze", str(only), "--out", str(reference), "--no-progress"]) == 0

    def detections(results: Path) -> list[list[str]]:
        rows = read_csv(results / "site" / "x.BirdNET.results.csv")
        return [[v for k, v in r.items() if k != "File"] for r in rows]

    got = read_csv(out / "site" / "x.BirdNET.results.csv")
    assert got and {r["File"] for r in got} == {str(clashing / "site" / "x.flac")}
    assert detections(out) == detections(reference)
    assert any(r["Scientific name"] == "Pica pica" for r in got)
    combined = read_csv(out / "BirdNET_CombinedTable.csv")
    assert {Path(r["File"]).name for r in combined} <= {"x.flac", "z.wav"}
    assert [r for r in combined if Path(r["File"]).name == "x.flac"] == got
    first = summary_of(out)
    assert (first["done"], first["failed"]) == (2, 1)
    # Resumed: nothing computed again, x.mp3 refused again.
    assert main(argv) == 1
    again = summary_of(out)
    assert (again["done"], again["skipped"], again["failed"]) == (0, 2, 1)
    assert again["windows_computed"] == 0
    assert refused(out) == [("x.mp3", "error", "NameClash")]
    assert read_csv(out / "site" / "x.BirdNET.results.csv") == got


@pytest.mark.model
def test_outputs_an_earlier_clash_mixed_up_are_made_right(
    tmp_path: Path, audio_dir: Path, model: BirdNetV24
) -> None:
    """An output folder where x.mp3 overwrote x.flac's embeddings (what bdisc did before
    it refused clashes, or x.mp3 run before x.flac was added) is repaired, once."""
    counter = CountingModel(model)
    root, out = tmp_path / "in", tmp_path / "out"
    flac, mp3 = root / "site" / "x.flac", root / "site" / "x.mp3"
    path = out / "embeddings" / "site" / "x.embeddings.parquet"
    config = RunConfig(out, AnalysisParams(), progress=False)

    def recording() -> set[str]:
        return {str(r) for r in pq.read_table(path).column("recording").to_pylist()}

    def embed() -> tuple[int, int, int]:
        s = api.embed([root], config, factory=lambda t: counter)
        return s.done, s.skipped, s.failed

    copy(audio_dir / "pica_pica_30s.flac", flac)
    assert embed() == (1, 0, 0) and counter.windows == 10
    parked = shutil.move(flac, tmp_path / "parked.flac")
    copy(audio_dir / "silence_10s.mp3", mp3)
    assert embed() == (1, 0, 0) and recording() == {"site/x.mp3"}
    silence = counter.windows - 10
    shutil.move(parked, flac)
    # Both have state records now, and the file holds x.mp3's windows: x.flac is not
    # taken for done from its record, it is computed again; x.mp3 is refused.
    assert embed() == (1, 0, 1) and counter.windows == 10 + silence + 10
    assert recording() == {"site/x.flac"}
    assert refused(out) == [("x.mp3", "error", "NameClash")]
    assert embed() == (0, 1, 1) and counter.windows == 20 + silence  # nothing twice
    # Once x.flac is gone, x.mp3 is computed again: its old record named x.flac's file.
    flac.unlink()
    assert embed() == (1, 0, 0) and counter.windows == 20 + 2 * silence
    assert recording() == {"site/x.mp3"}


@pytest.mark.model
@pytest.mark.slow
def test_discover_reads_the_kept_recording_once(
    tmp_path: Path, audio_dir: Path, factory: ModelFactory
) -> None:
    """The bundled soundscape as x.flac and x.mp3: discover clusters x.flac's windows,
    once, and reports x.mp3."""
    root = tmp_path / "in"
    copy(audio_dir / "soundscape.flac", root / "site" / "x.flac")
    copy(audio_dir / "soundscape.mp3", root / "site" / "x.mp3")
    out = tmp_path / "out"
    config = DiscoverConfig(
        root, out, cluster=ClusterParams(min_cluster_size=3), group_by="all", progress=False
    )
    summary = discover(config, factory=factory)
    assert (summary.embed.done, summary.embed.failed) == (1, 1)
    assert refused(out) == [("x.mp3", "error", "NameClash")]
    stored = pq.read_table(out / "embeddings" / "site" / "x.embeddings.parquet")
    assert set(stored.column("recording").to_pylist()) == {"site/x.flac"}
    assert summary.windows == stored.num_rows  # not twice: x.mp3 names the same file
    clustered = read_csv(out / "all" / "clusters.csv")
    assert len(clustered) == stored.num_rows
    assert {r["file"] for r in clustered} == {"x.flac"}


@pytest.mark.model
def test_importing_embeddings_refuses_the_clash_too(
    tmp_path: Path, audio_dir: Path, data_dir: Path
) -> None:
    root = tmp_path / "in"
    copy(audio_dir / "soundscape.flac", root / "soundscape.flac")
    copy(audio_dir / "soundscape.mp3", root / "soundscape.mp3")
    db = Path(
        shutil.copytree(data_dir / "birdnet_analyzer_2.4.0" / "embeddings_db", tmp_path / "db")
    )
    out = tmp_path / "out"
    argv = ["embed", str(root), "--out", str(out), "--no-progress", "--embeddings-from"]
    # The database holds soundscape.flac: imported; soundscape.mp3 is refused.
    assert main([*argv, str(db)]) == 1
    rows = read_csv(out / "errors.csv")
    assert [(Path(r["path"]).name, r["error"]) for r in rows] == [("soundscape.mp3", "NameClash")]
    assert rows[0]["message"].startswith(
        "soundscape.mp3 has the same name as soundscape.flac apart from its extension"
    )
    table = pq.read_table(out / "embeddings" / "soundscape.embeddings.parquet")
    assert set(table.column("recording").to_pylist()) == {"soundscape.flac"}
    assert table.num_rows == 40
    # A store holding only the refused recording's windows: they are not the kept one's.
    store = tmp_path / "mp3_store"
    writer = HopliteWriter(store, StoreSettings(1024, "float16", 0, 15000, 1.0))
    writer.add("/field/soundscape.mp3", np.zeros(1), np.full(1, 3.0), np.ones((1, 1024)))
    writer.close()
    other = tmp_path / "other"
    assert (
        main(
            [
                "embed",
                str(root),
                "--out",
                str(other),
                "--no-progress",
                "--embeddings-from",
                str(store),
            ]
        )
        == 1
    )
    errors = {Path(r["path"]).name: r["error"] for r in read_csv(other / "errors.csv")}
    assert errors == {"soundscape.flac": "not_in_store", "soundscape.mp3": "NameClash"}
    assert not (other / "embeddings" / "soundscape.embeddings.parquet").exists()
