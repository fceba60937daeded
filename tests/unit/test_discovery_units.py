"""Subsetting, pruning, clustering and sheets: no model needed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from bdisc.discovery.clustering import ClusterParams, cluster, jsd_matrix
from bdisc.discovery.prune import PruneRules, is_non_bird, prune
from bdisc.discovery.recordings import (
    Recording,
    Subset,
    find_recordings,
    parse_hours,
    select,
    timestamp_from_name,
)
from bdisc.discovery.sheets import read_review
from bdisc.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("20220606_160000.wav", datetime(2022, 6, 6, 16, 0, 0)),
        ("AL33_20230604_010000.flac", datetime(2023, 6, 4, 1, 0, 0)),
        (
            "S4A01234_20210601_053000+0100.wav",
            datetime(2021, 6, 1, 5, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("rec_20210601T053000Z.wav", datetime(2021, 6, 1, 5, 30, tzinfo=UTC)),
        ("soundscape.flac", None),
        ("20221399_250000.wav", None),  # not a real date
        ("12020220606_160000.wav", None),  # digits glued on: not a timestamp
    ],
)
def test_timestamps_from_names(name: str, expected: datetime | None) -> None:
    assert timestamp_from_name(name) == expected


def _rec(name: str, folder: str = "a") -> Recording:
    return Recording(
        Path(f"/x/{folder}/{name}"), f"{folder}/{name}", folder, name, timestamp_from_name(name)
    )


def test_hours_and_dates() -> None:
    recs = [_rec(f"2023060{d}_{h:02d}0000.wav") for d in (1, 2, 3) for h in (0, 5, 6, 8, 9, 23)]
    recs.append(_rec("no_time.wav"))
    kept, report = select(recs, Subset(hours=parse_hours("6-9")))
    assert {r.timestamp.hour for r in kept if r.timestamp} == {6, 8}
    assert report.no_timestamp == 1 and report.kept == 6
    kept, _ = select(recs, Subset(hours=parse_hours("22-6")))
    assert {r.timestamp.hour for r in kept if r.timestamp} == {23, 0, 5}
    kept, _ = select(recs, Subset(start_date=date(2023, 6, 2), end_date=date(2023, 6, 2)))
    assert {r.timestamp.day for r in kept if r.timestamp} == {2} and len(kept) == 6
    with pytest.raises(ConfigError):
        parse_hours("25-3")
    with pytest.raises(ConfigError):
        Subset(sample=1.5)


def test_sampling_is_per_deployment_and_seeded() -> None:
    recs = [_rec(f"r{i:02d}.wav", folder) for folder in ("a", "b") for i in range(20)]
    first, report = select(recs, Subset(sample=0.25, seed=7))
    again, _ = select(recs, Subset(sample=0.25, seed=7))
    other, _ = select(recs, Subset(sample=0.25, seed=8))
    assert first == again and first != other
    assert [r.folder for r in first].count("a") == 5 and report.not_sampled == 30


def test_deployments_are_immediate_subfolders(tmp_path: Path) -> None:
    for rel in ["site1/a.wav", "site1/deep/b.wav", "site2/c.flac", "loose.mp3"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = {(r.folder, r.file, r.rel) for r in find_recordings(tmp_path)}
    assert found == {
        ("site1", "a.wav", "site1/a.wav"),
        ("site1", "deep/b.wav", "site1/deep/b.wav"),
        ("site2", "c.flac", "site2/c.flac"),
        (tmp_path.name, "loose.mp3", "loose.mp3"),
    }


def test_prune_rules_report_what_they_removed() -> None:
    labels = np.array(
        [
            "Engine_Engine",
            "Turdus merula_Eurasian Blackbird",
            "Human vocal_Human vocal",
            "Turdus philomelos_Song Thrush",
            "Gryllus assimilis_Gryllus assimilis",
            "Parus major_Great Tit",
        ],
        dtype=object,
    )
    score = np.array([0.9, 0.8, 0.2, 0.3, 0.5, 0.05])
    level = np.array([-30, -30, -95, -30, -30, -30], dtype=float)
    rec = np.array(["r1", "r1", "r1", "r2", "r2", "r2"], dtype=object)
    keep, removed = prune(labels, score, level, rec, PruneRules())
    assert keep.all() and removed == {}
    keep, removed = prune(
        labels, score, level, rec, PruneRules(drop_silence_db=-80, any_bird=True, min_conf=0.1)
    )
    assert keep.tolist() == [False, True, False, True, False, False]
    assert removed == {"silence": 1, "non_bird": 2, "confidence": 1}
    keep, removed = prune(labels, score, level, rec, PruneRules(labels=("turdus*",)))
    assert keep.tolist() == [False, True, False, True, False, False] and removed == {"labels": 4}
    keep, _ = prune(labels, score, level, rec, PruneRules(labels=("great tit", "Engine")))
    assert keep.tolist() == [True, False, False, False, False, True]
    keep, removed = prune(labels, score, level, rec, PruneRules(top_n_per_file=1))
    assert keep.tolist() == [True, False, False, False, True, False]
    assert is_non_bird("Dog_Dog") and not is_non_bird("Pica pica_Eurasian Magpie")
    with pytest.raises(ConfigError):
        prune(labels, score, level, rec, PruneRules(classes=("x",)))


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three groups of non-negative 'embeddings' with different active dimensions."""
    rng = np.random.default_rng(seed)
    groups = []
    for k in range(3):
        profile = np.full(64, 0.1)
        profile[k * 20 : k * 20 + 20] = 3.0
        groups.append(rng.gamma(4.0, 1.0, (40, 64)) * profile)
    return np.vstack(groups).astype(np.float32), np.repeat(np.arange(3), 40)


@pytest.mark.parametrize("method", ["umap", "jsd"])
def test_clustering_recovers_groups_deterministically(method: str) -> None:
    data, truth = _blobs()
    params = ClusterParams(method=method, seed=3)  # type: ignore[arg-type]
    first = cluster(data, params)
    again = cluster(data, params)
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_allclose(first.map_xy, again.map_xy)
    assert first.map_xy.shape == (120, 2)
    for k in range(3):
        found = first.labels[truth == k]
        assert (found == np.bincount(found[found >= 0]).argmax()).mean() > 0.9
    assert len(set(first.labels[first.labels >= 0])) == 3


def test_noise_windows_birdnet_names_alike_become_a_cluster() -> None:
    """Windows HDBSCAN leaves as noise that BirdNET names as the same bird with 0.5 or
    more form a cluster after the others; a window named too weakly, or named as a
    non-bird, stays noise; named_group_score 0 leaves them all as noise."""
    data, _ = _blobs()
    odd = np.full((14, 64), 1e-3, np.float32)  # far from the blobs and from each other
    for i in range(14):
        odd[i, [(i * 9) % 64, (i * 9 + 5) % 64]] = 10.0
    data = np.vstack([data, odd])
    params = ClusterParams(method="jsd", seed=3, min_cluster_size=5, min_samples=None)
    plain = cluster(data, replace(params, named_group_score=0.0))
    noise = np.flatnonzero(plain.labels == -1)
    assert len(noise) >= 7  # the precondition: HDBSCAN left some windows out
    names = np.full(len(data), "", dtype=object)
    scores = np.zeros(len(data))
    names[noise], scores[noise] = "Pica pica_Eurasian Magpie", 0.9
    names[noise[0]] = "Dog_Dog"  # not a bird
    scores[noise[1]] = 0.3  # too weak
    named = cluster(data, params, birdnet=(names.astype(str), scores))
    new = int(plain.labels.max()) + 1
    assert named.labels[noise[:2]].tolist() == [-1, -1]
    assert (named.labels[noise[2:]] == new).all()
    assert (named.probabilities[noise[2:]] == 0.9).all()  # membership: BirdNET's score
    others = plain.labels != -1
    np.testing.assert_array_equal(named.labels[others], plain.labels[others])


def test_jsd_matrix_is_a_metric_in_unit_range() -> None:
    data, _ = _blobs()
    d = jsd_matrix(data[:10])
    assert d.shape == (10, 10) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert (d >= 0).all() and (d <= 1).all()
    from scipy.spatial.distance import jensenshannon

    assert d[0, 5] == pytest.approx(jensenshannon(data[0], data[5], base=2), abs=1e-6)


def test_jsd_refuses_oversized_inputs() -> None:
    data, _ = _blobs()
    with pytest.raises(ConfigError, match="GiB"):
        cluster(data, ClusterParams(method="jsd", jsd_max_windows=100))


def test_tiny_groups_are_all_noise() -> None:
    result = cluster(np.ones((3, 8), np.float32), ClusterParams())
    assert result.labels.tolist() == [-1, -1, -1] and result.map_xy.shape == (3, 2)


def test_review_sheet_accepts_cluster_hash(tmp_path: Path) -> None:
    sheet = tmp_path / "review.csv"
    sheet.write_text("Folder,Cluster #,Label\nsiteA,0,Piha\nsiteA,1,\nsiteA,-1,noise\n")
    assert [(e.folder, e.cluster, e.label) for e in read_review(sheet)] == [
        ("siteA", 0, "Piha"),
        ("siteA", 1, ""),
        ("siteA", -1, "noise"),
    ]
    sheet.write_text("Folder,Label\nsiteA,x\n")
    with pytest.raises(ConfigError, match="Cluster"):
        read_review(sheet)


def test_montages_draw_names_that_look_like_math(tmp_path: Path) -> None:
    """A recording named with dollar signs is drawn, not typeset (and never sinks the
    deployment's page)."""
    from bdisc.render.montage import Span, montage_png
    from bdisc.render.spectrogram import SpectrogramStyle

    rng = np.random.default_rng(0)

    def read(source: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        return rng.normal(0, 0.1, int(16_000 * (end_s - start_s))).astype(np.float32), 16_000

    png = montage_png(
        "site $x^$ - cluster 1", [Span("a$\\bogus{$.wav", 0.0, 3.0)], read, SpectrogramStyle()
    )
    assert png.data.startswith(b"\x89PNG") and png.width > 0


def test_labels_that_look_like_formulas_are_quoted_in_sheets(tmp_path: Path) -> None:
    """A label a spreadsheet would run (=, +, -, @) is written quoted and read back as
    given, so opening a review sheet never runs a reviewer's text."""
    from bdisc.discovery.labelled_sheet import with_labels
    from bdisc.discovery.sheets import from_sheet_cell, sheet_cell

    sheet = "Folder,Cluster,Label,Size\nnorth,0,,3\nnorth,1,,2\n"
    hostile = '=HYPERLINK("http://example.org","x")'
    written = with_labels(sheet, {0: hostile, 1: "-background"})
    assert "'=HYPERLINK" in written and "'-background" in written
    (tmp_path / "review.csv").write_text(written)
    assert [e.label for e in read_review(tmp_path / "review.csv")] == [hostile, "-background"]
    for text in ("wren", "'Alala", "@home", "+1", ""):
        assert from_sheet_cell(sheet_cell(text)) == text
