"""Start from what BirdNET-Analyzer computed: its 2.4 embeddings database (the shared
reference, `tests/data/birdnet_analyzer_2.4.0/embeddings_db`, made by its `embeddings`
command on soundscape.flac) and its 1.x text files; and write its database back, opened
by perch-hoplite 0.1.3 (the version BirdNET-Analyzer 2.4.0 works with)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bdisc.cli.main import main
from bdisc.interop.hoplite_db import HopliteWriter, StoreSettings
from bdisc.interop.import_embeddings import Target, import_embeddings
from bdisc.params import AnalysisParams

REFERENCE_SOURCE = "/tmp/bna-ref/in/soundscape.flac"
PERCH_HOPLITE = "perch-hoplite==0.1.3"


@pytest.fixture
def reference_db(data_dir: Path, tmp_path: Path) -> Path:
    """A copy (SQLite may write beside a database it opens)."""
    return Path(
        shutil.copytree(data_dir / "birdnet_analyzer_2.4.0" / "embeddings_db", tmp_path / "db")
    )


def _input(tmp_path: Path, audio_dir: Path, *names: str) -> Path:
    root = tmp_path / "in"
    root.mkdir(parents=True)
    for name in names or ("soundscape.flac",):
        shutil.copy(audio_dir / "soundscape.flac", root / name)
    return root


def _parquet(out: Path, name: str = "soundscape") -> tuple[pq.Table, dict[str, object]]:
    table = pq.read_table(out / "embeddings" / f"{name}.embeddings.parquet")
    return table, json.loads(table.schema.metadata[b"bdisc"])


def _matrix(table: pq.Table) -> np.ndarray:
    return np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)


@pytest.mark.model
def test_embed_from_the_database_equals_embedding_the_audio(
    reference_db: Path, tmp_path: Path, audio_dir: Path
) -> None:
    root = _input(tmp_path, audio_dir, "soundscape.flac", "other.flac")
    ours = tmp_path / "ours"
    assert main(["embed", str(root), "--out", str(ours), "--no-progress"]) == 0
    imported = tmp_path / "imported"
    argv = ["embed", str(root), "--out", str(imported), "--embeddings-from", str(reference_db)]
    # other.flac is not in the database: a clear per-recording error, the rest is done.
    assert main([*argv, "--no-progress"]) == 1
    errors = (imported / "errors.csv").read_text()
    assert "other.flac,error,not_in_store," in errors
    native, _ = _parquet(ours)
    table, meta = _parquet(imported)
    assert table.column("start_s").to_pylist() == native.column("start_s").to_pylist()
    assert table.column("end_s").to_pylist() == native.column("end_s").to_pylist()
    # The database keeps float16: equal to ours to its precision.
    assert np.abs(_matrix(table) - _matrix(native)).max() < 5e-3
    # Top labels come from BirdNET's own last layer: the same as from the audio.
    got = [t[0] for t in table.column("top_labels").to_pylist()]
    assert got == [t[0] for t in native.column("top_labels").to_pylist()]
    first = table.column("top_scores").to_pylist()[0][0]
    assert abs(first - 0.8141) < 5e-4  # BirdNET-Analyzer's own 0.8141 for 0-3 s
    window = meta["window"]
    assert isinstance(window, dict)
    assert window["overlap_s"] == 0.0 and window["bandpass_fmax"] == 15000.0
    assert "BirdNET-Analyzer 2.x" in str(window["model_precision"])
    assert meta["recording"] == {"path": "soundscape.flac", "source": str(root / "soundscape.flac")}
    assert meta["import"] == {"kind": "hoplite", "source": REFERENCE_SOURCE}
    assert np.isnan(table.column("rms_dbfs").to_numpy()).all()  # levels are not stored
    # A second run finds nothing to do.
    before = (imported / "embeddings" / "soundscape.embeddings.parquet").stat().st_mtime_ns
    assert main([*argv, "--no-progress"]) == 1
    assert (imported / "embeddings" / "soundscape.embeddings.parquet").stat().st_mtime_ns == before


@pytest.mark.model
def test_discover_from_the_database(reference_db: Path, tmp_path: Path, audio_dir: Path) -> None:
    root = tmp_path / "project"
    _input(root, audio_dir)  # one deployment folder, "in"
    out = tmp_path / "out"
    argv = ["discover", str(root), "--out", str(out), "--embeddings-from", str(reference_db)]
    assert main([*argv, "--min-cluster-size", "3", "--no-progress"]) == 0
    settings = json.loads((out / "discovery.json").read_text())
    assert settings["windows"] == 40  # BirdNET-Analyzer's windows, not discover's 1.5-s overlap
    assert settings["embedding"]["overlap_s"] == 0.0
    assert (out / "in" / "review.csv").read_text().count("\n") > 1


@pytest.mark.model
def test_stores_that_do_not_fit_are_refused(tmp_path: Path, audio_dir: Path) -> None:
    root = _input(tmp_path, audio_dir)
    other = tmp_path / "perch"
    writer = HopliteWriter(other, StoreSettings(1536, "float16", 0, 15000, 1.0))
    writer.add(str(root / "soundscape.flac"), np.zeros(1), np.ones(1) * 5, np.ones((1, 1536)))
    writer.close()
    out = tmp_path / "out"
    argv = ["embed", str(root), "--out", str(out), "--embeddings-from", str(other)]
    assert main([*argv, "--no-progress"]) == 2  # 1536-d: not BirdNET V2.4
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["embed", str(root), "--out", str(out), "--embeddings-from", str(empty)]
    assert main([*argv, "--no-progress"]) == 2


@pytest.mark.model
def test_embed_from_birdnet_analyzer_1x_text_files(tmp_path: Path, audio_dir: Path) -> None:
    root = _input(tmp_path, audio_dir)
    ours = tmp_path / "ours"
    argv = ["embed", str(root), "--out", str(ours), "--format", "birdnet", "--no-progress"]
    assert main(argv) == 0
    text = ours / "embeddings" / "soundscape.birdnet.embeddings.txt"
    first = text.read_text().splitlines()[0].split("\t")
    assert first[:2] == ["0.0", "3.0"] and len(first[2].split(",")) == 1024
    imported = tmp_path / "imported"
    argv = ["embed", str(root), "--out", str(imported), "--embeddings-from", str(text.parent)]
    assert main([*argv, "--no-progress"]) == 0
    native, _ = _parquet(ours)
    table, meta = _parquet(imported)
    assert np.abs(_matrix(table) - _matrix(native)).max() < 1e-4
    assert "1.x" in str(meta["window"]["model_precision"])  # type: ignore[index]


@pytest.fixture(scope="session")
def hoplite_python() -> Path:
    """perch-hoplite 0.1.3 in a venv of its own (its pins clash with ours); built once."""
    venv = Path(__file__).parents[2] / ".venv-hoplite"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PERCH_HOPLITE], check=True, timeout=900
        )
    return python


OPEN_WITH_PERCH_HOPLITE = """
import json, sys
import numpy as np
from perch_hoplite.db import sqlite_usearch_impl
db = sqlite_usearch_impl.SQLiteUsearchDB.create(sys.argv[1])
ids = sorted(int(i) for i in db.get_embedding_ids())
source = db.get_embedding_source(ids[0])
print(json.dumps({
    "count": db.count_embeddings(),
    "dim": db.embedding_dimension(),
    "datasets": list(db.get_dataset_names()),
    "source": source.source_id,
    "offsets": [[float(x) for x in db.get_embedding_source(i).offsets] for i in ids],
    "settings": db.get_metadata("birdnet_analyzer_settings").to_dict(),
    "first": [float(x) for x in db.get_embedding(ids[0])],
}))
"""


@pytest.mark.model
@pytest.mark.slow
def test_hoplite_export_opens_in_perch_hoplite(
    tmp_path: Path, audio_dir: Path, hoplite_python: Path
) -> None:
    root = _input(tmp_path, audio_dir)
    out = tmp_path / "out"
    argv = ["embed", str(root), "--out", str(out), "--format", "hoplite", "--overlap", "1.5"]
    assert main([*argv, "--no-progress"]) == 0
    run = subprocess.run(
        [str(hoplite_python), "-c", OPEN_WITH_PERCH_HOPLITE, str(out / "hoplite")],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    table, _ = _parquet(out)
    assert seen["count"] == table.num_rows == 80  # 120 s at 1.5-s overlap
    assert seen["dim"] == 1024 and seen["datasets"] == ["birdnet_analyzer_dataset"]
    assert seen["source"] == str(root / "soundscape.flac")
    assert seen["offsets"][:2] == [[0.0, 3.0], [1.5, 4.5]] and seen["offsets"][-1] == [118.5, 120.0]
    assert seen["settings"] == {"AUDIO_SPEED": 1.0, "BANDPASS_FMAX": 15000, "BANDPASS_FMIN": 0}
    assert np.abs(np.array(seen["first"]) - _matrix(table)[0]).max() < 5e-3
    # ... and bdisc reads its own database back like BirdNET-Analyzer's.
    again = tmp_path / "again"
    argv = ["embed", str(root), "--out", str(again), "--embeddings-from", str(out / "hoplite")]
    assert main([*argv, "--no-progress"]) == 0
    assert _parquet(again)[0].num_rows == 80


@pytest.mark.model
def test_prune_by_birdnet_analyzer_results(
    reference_db: Path, tmp_path: Path, audio_dir: Path, data_dir: Path
) -> None:
    """BirdNET-Analyzer's own detections (its default run) pick the windows to cluster:
    the Black-capped Chickadee's 0-3 s (0.81) and 3-6 s (0.31) cover, by half a window or
    more, the 1.5-s-overlap windows at 0, 1.5, 3 and 4.5 s."""
    root = tmp_path / "project"
    _input(root, audio_dir)
    results = data_dir / "birdnet_analyzer_2.4.0" / "default"
    out = tmp_path / "out"
    argv = ["discover", str(root), "--out", str(out), "--prune-by-results", str(results)]
    chickadee = ["--keep-labels", "Black-capped Chickadee", "--min-cluster-size", "2"]
    assert main([*argv, *chickadee, "--no-progress"]) == 0
    settings = json.loads((out / "discovery.json").read_text())
    assert settings["windows"] == 80 and settings["windows_kept"] == 4
    assert settings["prune"]["removed"]["results"] == 76
    assert settings["prune_by_results"] == str(results)
    starts = sorted(float(line.split(",")[2]) for line in _clusters(out / "in"))
    assert starts == [0.0, 1.5, 3.0, 4.5]
    # The confidence rule applies to the detections: only 0-3 s passes 0.5.
    out2 = tmp_path / "out2"
    argv = ["discover", str(root), "--out", str(out2), "--prune-by-results", str(results)]
    assert main([*argv, *chickadee, "--keep-min-conf", "0.5", "--no-progress"]) == 0
    assert json.loads((out2 / "discovery.json").read_text())["windows_kept"] == 2


def _clusters(folder: Path) -> list[str]:
    return (folder / "clusters.csv").read_text().splitlines()[1:]


def _store(path: Path, sources: dict[str, tuple[float, float]], overlap: float = 0.0) -> Path:
    """A BirdNET-Analyzer database of synthetic vectors: each source from 0 to its end."""
    writer = HopliteWriter(path, StoreSettings(1024, "float16", 0, 15000, 1.0))
    rng = np.random.default_rng(0)
    for source, (_, end) in sources.items():
        starts = np.arange(0.0, end - 1.0 + 1e-9, 3.0 - overlap)
        ends = np.minimum(starts + 3.0, end)
        writer.add(source, starts, ends, rng.normal(size=(len(starts), 1024)))
    writer.close()
    return path


@pytest.mark.model
def test_ambiguous_and_unmatched_recordings(tmp_path: Path) -> None:
    """A recording that two stored recordings name fails as ambiguous (it gets neither);
    one the store lacks fails as not in the store; the rest is imported."""
    root = tmp_path / "in"
    for rel in ("x.wav", "north/dawn.wav", "south/dusk.wav"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")  # the audio is not read
    store = _store(
        tmp_path / "db",
        {
            "/field/site1/x.wav": (0, 30),
            "/field/site2/x.wav": (0, 30),
            "/field/north/dawn.wav": (0, 119.9),
        },
        overlap=1.5,
    )
    targets = [Target(root / rel, rel) for rel in ("x.wav", "north/dawn.wav", "south/dusk.wav")]
    out = tmp_path / "out"
    summary = import_embeddings(store, targets, out, AnalysisParams())
    assert (summary.done, summary.failed) == (1, 2)
    errors = (out / "errors.csv").read_text()
    assert "x.wav,error,ambiguous,two recordings of the store match it" in errors
    assert "dusk.wav,error,not_in_store," in errors
    assert not (out / "embeddings" / "x.embeddings.parquet").exists()
    table, meta = _parquet(out, "north/dawn")
    # 119.9 s at 1.5-s overlap: the windows reaching the end are shorter, and that is fine.
    assert table.num_rows == 80 and meta["window"]["overlap_s"] == 1.5  # type: ignore[index]
    assert meta["window"]["tail_windows"] == "birdnet-analyzer-2.4"  # type: ignore[index]
