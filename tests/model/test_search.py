"""Search by example and duplicates on real stored embeddings (bdisc's own embed of the
bundled recordings): recall against exact search, the review group export cuts, and
copies of real audio found while unrelated recordings are not."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bdisc.cli.main import main
from bdisc.errors import IncompatibleArtifact
from bdisc.model.birdnet import BirdNetV24
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import ModelFactory, RunConfig
from bdisc.search.exact import exact_search, recall_at_k
from bdisc.search.example import embed_example
from bdisc.search.manifest import IndexSettings
from bdisc.search.stored_windows import embedding_files, read_windows
from bdisc.search.window_index import open_index

PIHA = ("ScreamingPiha1.mp3", "ScreamingPiha2.mp3", "ScreamingPiha5.mp3")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def every_recording(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, factory: ModelFactory
) -> Path:
    """Every bundled recording, windows every half second (2.5-s overlap): about 880
    windows (soundscape.mp3 and .ogg would share soundscape.flac's embeddings file name,
    so they are refused and soundscape.flac is stored once)."""
    out = tmp_path_factory.mktemp("every")
    config = RunConfig(out, AnalysisParams(overlap_s=2.5), progress=False)
    api.embed([data_dir / "audio", data_dir / "discovery"], config, factory=factory)
    clashes = [Path(r["path"]).name for r in rows(out / "errors.csv") if r["error"] == "NameClash"]
    assert clashes == ["soundscape.mp3", "soundscape.ogg"]
    return out


@pytest.fixture(scope="module")
def copies(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, factory: ModelFactory
) -> tuple[Path, Path]:
    """(input, results): a recording under a second name, one holding a copied stretch
    (soundscape 30-60 s pasted between magpie audio), and unrelated recordings."""
    root = tmp_path_factory.mktemp("copies") / "in"
    audio, piha = data_dir / "audio", data_dir / "discovery" / "piha_site"
    for folder, name, src in (
        ("a", "soundscape.flac", audio / "soundscape.flac"),
        ("b", "renamed_copy.flac", audio / "soundscape.flac"),
        ("a", "pica.flac", audio / "pica_pica_30s.flac"),
        ("noise", "street.flac", data_dir / "discovery" / "noise" / "street.flac"),
        *(("piha", name, piha / name) for name in PIHA),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / folder / name)
    scape, rate = sf.read(audio / "soundscape.flac", dtype="int16")
    pica, pica_rate = sf.read(audio / "pica_pica_30s.flac", dtype="int16")
    assert rate == pica_rate == 48_000
    mixed = np.concatenate(
        [pica[: 6 * rate], scape[30 * rate : 60 * rate], pica[6 * rate : 12 * rate]]
    )
    sf.write(root / "b" / "mixed.wav", mixed, rate, subtype="PCM_16")
    out = root.parent / "results"
    api.embed([root], RunConfig(out, AnalysisParams(), progress=False), factory=factory)
    return root, out


@pytest.mark.model
@pytest.mark.slow
def test_recall_at_100_on_real_embeddings(every_recording: Path) -> None:
    stored = [read_windows(f) for f in embedding_files(every_recording / "embeddings")]
    vectors = np.concatenate([w.vectors for w in stored])
    assert len(vectors) > 800
    index, _ = open_index(every_recording, IndexSettings(exact_pairs=0))  # the graph's recall
    assert len(index) == len(vectors)
    # ids follow the files in order, so row i of ``vectors`` is id i
    found, distances = index.search(vectors, 100)
    truth, exact = exact_search(vectors, vectors, 100)
    assert recall_at_k(found, truth) >= 0.95
    # the reported distances are the windows' cosine distances (to f16 precision)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    true_d = 1 - np.einsum("qd,qkd->qk", unit, unit[found[:, :10]])
    np.testing.assert_allclose(distances[:, :10], true_d, atol=2e-3)
    assert (exact[:, 0] < 1e-5).all()  # every window is its own nearest


@pytest.mark.model
def test_search_by_example_labels_and_exports(copies: tuple[Path, Path], tmp_path: Path) -> None:
    root, results = copies
    out = results / "searches" / "piha"
    example = root / "piha" / "ScreamingPiha2.mp3"
    argv = ["search", "--results", str(results), "--example", str(example), "--start", "3"]
    assert main([*argv, "--end", "6", "--top", "12", "--out", str(out)]) == 0
    matches = rows(out / "matches.csv")
    assert len(matches) == 12 and [m["rank"] for m in matches] == [str(i) for i in range(1, 13)]
    distances = [float(m["distance"]) for m in matches]
    assert distances == sorted(distances)
    # the example itself (stored window 3-6 s) comes first, then other piha calls
    assert (matches[0]["recording"], matches[0]["start_s"]) == ("piha/ScreamingPiha2.mp3", "3")
    assert distances[0] < 1e-3
    assert all(m["folder"] == "piha" for m in matches[:8]), matches[:8]
    assert (out / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    sheet = rows(out / "review.csv")
    assert [(r["Folder"], r["Cluster"], r["Size"]) for r in sheet] == [("searches/piha", "1", "12")]
    text = (out / "review.csv").read_text().replace("searches/piha,1,,", "searches/piha,1,Piha,")
    (out / "review.csv").write_text(text)
    trainset = tmp_path / "trainset"
    export = ["export", "--review", str(out / "review.csv"), "--results", str(results)]
    assert main([*export, "--out", str(trainset)]) == 0
    clips = sorted(p.name for p in (trainset / "Piha").glob("*.wav"))
    assert len(clips) == 12 and "piha__ScreamingPiha2__3000.wav" in clips

    # the same window named as stored: the same matches
    again = tmp_path / "again"
    window = ["--window", "ScreamingPiha2.mp3", "3", "--top", "12", "--out", str(again)]
    assert main(["search", "--results", str(results), *window]) == 0
    assert [m["recording"] for m in rows(again / "matches.csv")][:5] == [
        m["recording"] for m in matches[:5]
    ]
    # --max-distance keeps the close ones only
    close = tmp_path / "close"
    assert main([*argv, "--top", "50", "--max-distance", "0.1", "--out", str(close)]) == 0
    assert all(float(m["distance"]) <= 0.1 for m in rows(close / "matches.csv"))
    assert 0 < len(rows(close / "matches.csv")) < 50


@pytest.mark.model
def test_an_example_embedded_by_another_model_is_refused(
    copies: tuple[Path, Path], model: BirdNetV24
) -> None:
    root, results = copies
    index, _ = open_index(results)
    other = {**index.provenance, "model_sha256": "f" * 64}
    with pytest.raises(IncompatibleArtifact):
        embed_example(root / "a" / "pica.flac", 0.0, 3.0, model, other)


@pytest.mark.model
def test_copies_are_found_and_unrelated_recordings_are_not(copies: tuple[Path, Path]) -> None:
    _, results = copies
    out = results / "dups"
    assert main(["duplicates", "--results", str(results), "--out", str(out)]) == 0
    found = {
        (r["recording_a"], r["recording_b"], r["kind"]): r for r in rows(out / "duplicates.csv")
    }
    assert set(found) == {
        ("a/soundscape.flac", "b/renamed_copy.flac", "recording"),
        ("a/soundscape.flac", "b/mixed.wav", "stretch"),
        ("b/mixed.wav", "b/renamed_copy.flac", "stretch"),
    }
    stretch = found[("a/soundscape.flac", "b/mixed.wav", "stretch")]
    assert [float(stretch[k]) for k in ("start_a_s", "end_a_s", "start_b_s", "end_b_s")] == [
        30.0,
        60.0,
        6.0,
        36.0,
    ]
    assert int(stretch["windows"]) == 10 and float(stretch["max_distance"]) <= 0.02
    excluded = [
        (r["recording"], r["start_s"], r["end_s"]) for r in rows(out / "duplicates_exclude.csv")
    ]
    assert excluded == [("b/mixed.wav", "6", "36"), ("b/renamed_copy.flac", "0", "120")]
    # nothing was deleted
    assert len(embedding_files(results / "embeddings")) == 8


@pytest.mark.model
@pytest.mark.slow
def test_discover_leaves_the_copies_out(copies: tuple[Path, Path], tmp_path: Path) -> None:
    """duplicates_exclude.csv takes the second copies out of a discovery's clustering."""
    root, results = copies
    sheet = tmp_path / "dups"
    assert main(["duplicates", "--results", str(results), "--out", str(sheet)]) == 0
    out = tmp_path / "disc"
    shutil.copytree(results / "embeddings", out / "embeddings")  # embedded already: reused
    argv = ["discover", str(root), "--out", str(out), "--overlap", "0", "--no-progress"]
    assert main([*argv, "--exclude", str(sheet / "duplicates_exclude.csv")]) == 0
    report = json.loads((out / "discovery.json").read_text())
    assert report["prune"]["removed"]["excluded"] == 10 + 40  # mixed.wav 6-36 s, the copy
    clustered = [r for f in ("a", "b") for r in rows(out / f / "clusters.csv")]
    assert not any(r["file"] == "renamed_copy.flac" for r in clustered)
    kept = sorted(float(r["start_s"]) for r in clustered if r["file"] == "mixed.wav")
    assert kept == [0.0, 3.0, 36.0, 39.0]
    assert report["windows"] - report["windows_kept"] == 50
