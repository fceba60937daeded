"""Active learning without BirdNET: margins and the spread pick, the suggestion group a
results folder gets (a head trained on synthetic embeddings), whose labels train and
export then read; and a head as discovery's window classifier."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bdisc.discovery.export import ExportConfig, plan, recording_index
from bdisc.discovery.sheets import REVIEW_COLUMNS, read_clusters
from bdisc.errors import ConfigError, IncompatibleArtifact
from bdisc.params import AnalysisParams
from bdisc.training.api import TrainConfig, train
from bdisc.training.fit import FitConfig
from bdisc.training.from_results import from_results
from bdisc.training.margin import choose, score_band, uncertainty
from bdisc.training.model_file import base_model, load_model
from bdisc.training.suggest import (
    SUGGEST_FILE,
    WINDOWS_FILE,
    SuggestConfig,
    suggest,
)
from bdisc.training.window_classifier import HeadClassifier

from .training_helpers import centres, fake_model_dir, results_folder

# -- margins ---------------------------------------------------------------------------


def test_the_margin_is_the_distance_to_each_class_threshold() -> None:
    scores = np.array([[0.9, 0.2], [0.35, 0.05], [0.6, 0.95], [0.02, 0.71]])
    unc = uncertainty(scores, [0.3, 0.7])
    # each window's closest class: row 0 |0.9-0.3| = 0.6 > |0.2-0.7| = 0.5
    assert unc.focus.tolist() == [1, 0, 1, 1]
    assert np.allclose(unc.margin, [0.5, 0.05, 0.25, 0.01])
    only = uncertainty(scores, [0.3, 0.7], focus_class=1)
    assert np.allclose(only.margin, [0.5, 0.65, 0.25, 0.01])
    top2 = uncertainty(scores, [0.3, 0.7], "top2")
    assert np.allclose(top2.margin, [0.7, 0.3, 0.35, 0.69]) and top2.focus.tolist() == [0, 0, 1, 1]


def test_score_bands_are_relative_to_the_threshold() -> None:
    bands = score_band(np.array([0.1, 0.3, 0.5, 0.9, 0.2]), np.array([0.4, 0.4, 0.4, 0.4, 0.2]))
    assert bands.tolist() == [0, 1, 2, 3, 2]


def test_the_pick_takes_strata_in_turn_most_uncertain_first() -> None:
    margin = np.array([0.01, 0.02, 0.03, 0.04, 0.5, 0.6, 0.9])
    strata = ["a", "a", "a", "a", "b", "b", "c"]
    picked = choose(margin, strata, 4, np.random.default_rng(0), pool_factor=2)
    # pool: the 8 (all) most uncertain; a, then b, in turn; c's only window comes third
    assert picked == [0, 4, 6, 1]
    assert choose(margin, strata, 2, np.random.default_rng(0), pool_factor=1) == [0, 1]


def test_the_pick_never_takes_overlapping_windows_of_one_recording() -> None:
    margin = np.array([0.01, 0.02, 0.03, 0.5])
    spans = [("r", 0.0, 3.0), ("r", 1.5, 4.5), ("r", 3.0, 6.0), ("s", 0.0, 3.0)]
    picked = choose(margin, ["x"] * 4, 3, np.random.default_rng(0), spans, pool_factor=1)
    assert picked == [0, 2, 3]  # 1 overlaps 0; the pool was short, so 3 fills in


def test_a_share_of_the_picks_is_drawn_at_random() -> None:
    """explore: that share of the picks are windows drawn at random (most are far from
    uncertain here), the rest the most uncertain; the draw follows the seed."""
    margin = np.linspace(0.0, 1.0, 1000)
    strata = ["a"] * 1000
    pure = choose(margin, strata, 10, np.random.default_rng(3))
    assert pure == list(range(10))
    mixed = choose(margin, strata, 10, np.random.default_rng(3), explore=0.3)
    assert len(mixed) == 10 and len(set(mixed)) == 10
    assert sorted(i for i in mixed if i >= 10) != [] and sum(i < 10 for i in mixed) >= 7
    assert mixed == choose(margin, strata, 10, np.random.default_rng(3), explore=0.3)
    drawn = choose(margin, strata, 10, np.random.default_rng(3), explore=1.0)
    assert sum(i >= 100 for i in drawn) >= 7  # uniform over 1000: few among the first 100
    with pytest.raises(ConfigError, match="share of random picks"):
        choose(margin, strata, 10, np.random.default_rng(3), explore=1.5)


def test_ties_are_broken_by_the_seed_alone() -> None:
    margin = np.zeros(50)
    strata = ["x"] * 50
    a = choose(margin, strata, 5, np.random.default_rng(3))
    assert a == choose(margin, strata, 5, np.random.default_rng(3))
    assert a != choose(margin, strata, 5, np.random.default_rng(4))
    with pytest.raises(ConfigError):
        choose(margin, strata, 0, np.random.default_rng(3))


# -- a suggestion group in a results folder -------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(results, model folder, BirdNET folder): two deployments, each with a Piha, a
    Hermit and a noise recording labelled by cluster; unlabelled recordings: `mix`
    (halfway between Piha and noise: uncertain) and `sure` (Piha-like)."""
    model_dir = fake_model_dir(tmp_path / "birdnet")
    sha = base_model(model_dir)["sha256"]
    piha, hermit, noise = centres(3)
    recordings, clusters = {}, {}
    for site in ("a", "b"):
        for k, (name, centre) in enumerate(
            [("piha", piha), ("hermit", hermit), ("noise", noise)], start=1
        ):
            recordings[f"{site}/{name}.wav"] = (12, centre)
            clusters[f"{site}/{name}.wav"] = k
        recordings[f"{site}/mix.wav"] = (10, (piha + noise) / 2)
        recordings[f"{site}/sure.wav"] = (10, piha)
        clusters[f"{site}/mix.wav"] = clusters[f"{site}/sure.wav"] = 4
    sheets: dict[str, Sequence[tuple[str, int, str]]] = {
        site: [(site, 1, "Piha"), (site, 2, "Hermit"), (site, 3, "Noise"), (site, 4, "")]
        for site in ("a", "b")
    }
    results = results_folder(tmp_path / "results", sha, recordings, clusters, sheets)
    model = tmp_path / "model"
    train(TrainConfig(results, model, FitConfig(seed=0), 0.5, export=False, model_dir=model_dir))
    return results, model, model_dir


def _fill(path: Path, column: str, label: str) -> None:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        names = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        row[column] = label
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_suggestions_are_unlabelled_uncertain_windows_of_every_deployment(
    project: tuple[Path, Path, Path],
) -> None:
    results, model_folder, model_dir = project
    model = load_model(model_folder, model_dir)
    out = results / "suggested"
    done = suggest(model, SuggestConfig(results, out, n=6, focus="Piha"))
    assert done.pool == 40 and done.skipped == 72  # 4 x 10 unlabelled, 6 x 12 labelled
    files = {(s.row.folder, s.row.file) for s in done.suggestions}
    assert len(done.suggestions) == 6
    assert {f for _, f in files} <= {"mix.wav", "sure.wav"}
    assert {folder for folder, _ in files} == {"a", "b"}
    # the halfway recordings are the uncertain ones
    assert sum(s.row.file == "mix.wav" for s in done.suggestions) >= 4
    margins = [s.margin for s in done.suggestions]
    assert all(s.focus == "Piha" for s in done.suggestions)
    assert min(margins) == pytest.approx(min(abs(s.score - s.threshold) for s in done.suggestions))
    # laid out as a discovery group
    with (out / "review.csv").open() as f:
        review = list(csv.reader(f))
    assert review[0] == REVIEW_COLUMNS
    assert [r[:3] for r in review[1:]] == [["suggested", str(k), ""] for k in range(1, 7)]
    rows = read_clusters(out / "clusters.csv")
    assert [r.cluster for r in rows] == list(range(1, 7))
    assert [(r.folder, r.file, r.start_s) for r in rows] == [
        (s.row.folder, s.row.file, s.row.start_s) for s in done.suggestions
    ]
    assert (out / "montages" / "cluster_6.png").stat().st_size > 1000
    assert (out / "montage.png").is_file() and (out / "index.html").is_file()
    assert (out / SUGGEST_FILE).is_file()
    with (out / WINDOWS_FILE).open() as f:
        sheet = list(csv.DictReader(f))
    assert list(sheet[0])[:4] == ["folder", "file", "start_s", "label"]
    assert all(r["label"] == "" for r in sheet)


def test_labels_given_in_the_review_sheet_train_and_export(
    project: tuple[Path, Path, Path],
) -> None:
    results, model_folder, model_dir = project
    model = load_model(model_folder, model_dir)
    before = len(from_results(results))
    out = results / "suggested"
    suggest(model, SuggestConfig(results, out, n=5))
    assert len(from_results(results)) == before  # nothing labelled yet
    _fill(out / "review.csv", "Label", "Piha")
    data = from_results(results)
    assert len(data) == before + 5 and data.counts()["Piha"] == 24 + 5
    clips = plan(
        ExportConfig(review=out / "review.csv", results=results, out=results / "trainset"),
        recording_index(results, "source"),
    )
    assert len(clips) == 5 and {c.label for c in clips} == {"Piha"}
    assert {c.folder for c in clips} <= {"a", "b"}  # the windows' own deployments
    # labelled now: a new round suggests other windows
    again = suggest(model, SuggestConfig(results, results / "round2", n=5))
    first = {(r.folder, r.file, r.start_s) for r in read_clusters(out / "clusters.csv")}
    assert not first & {(s.row.folder, s.row.file, s.row.start_s) for s in again.suggestions}
    with pytest.raises(ConfigError, match="holds labels"):
        suggest(model, SuggestConfig(results, out, n=5))
    suggest(model, SuggestConfig(results, out, n=5, force=True))


def test_labels_given_in_the_windows_sheet_are_overrides(
    project: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    results, model_folder, model_dir = project
    model = load_model(model_folder, model_dir)
    out = tmp_path / "elsewhere"  # outside the results: its sheet is an overrides file
    done = suggest(model, SuggestConfig(results, out, n=4))
    _fill(out / WINDOWS_FILE, "label", "Hermit")
    before = from_results(results).counts()["Hermit"]
    data = from_results(results, overrides=out / WINDOWS_FILE)
    assert data.counts()["Hermit"] == before + 4
    labelled = {
        (str(r), round(float(s), 3)) for r, s in zip(data.recordings, data.starts, strict=True)
    }
    for s in done.suggestions:
        assert (s.recording, round(s.row.start_s, 3)) in labelled
    # pending windows of another suggestion group are not suggested again
    inside = suggest(model, SuggestConfig(results, results / "s1", n=10))
    other = suggest(model, SuggestConfig(results, results / "s2", n=10))
    keys = {(s.recording, s.row.start_s) for s in inside.suggestions}
    assert not keys & {(s.recording, s.row.start_s) for s in other.suggestions}


def test_suggest_refuses_what_it_cannot_do(project: tuple[Path, Path, Path]) -> None:
    results, model_folder, model_dir = project
    model = load_model(model_folder, model_dir)
    with pytest.raises(ConfigError, match="no class"):
        suggest(model, SuggestConfig(results, results / "s", focus="Tinamou"))
    with pytest.raises(ConfigError, match="discovery group"):
        suggest(model, SuggestConfig(results, results / "a"))
    with pytest.raises(ConfigError):
        SuggestConfig(results, results / "s", n=0)


# -- a head as discovery's window classifier ------------------------------------------


def test_the_head_names_each_window_s_class_or_noise(project: tuple[Path, Path, Path]) -> None:
    _, model_folder, model_dir = project
    classifier = HeadClassifier(load_model(model_folder, model_dir))
    assert classifier.check_classes(["piha", "Noise", "background"]) == ("Piha", "Noise", "Noise")
    with pytest.raises(ConfigError):
        classifier.check_classes(["Tinamou"])
    piha, hermit, noise = centres(3)
    x = np.stack([piha, hermit, noise]).astype(np.float32)
    assert classifier.top_class(x) == ["Piha", "Hermit", "Noise"]
    assert classifier.top_class(x[:0]) == []
    classifier.check_params(AnalysisParams())
    with pytest.raises(IncompatibleArtifact, match="bandpass_fmin"):
        classifier.check_params(AnalysisParams(bandpass=AnalysisParams().bandpass.__class__(500.0)))
