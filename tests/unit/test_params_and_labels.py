from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import ConfigError, NotFound
from bdisc.model.labels import Label, read_species_list, resolve_species
from bdisc.model.port import ModelInfo
from bdisc.params import AnalysisParams
from bdisc.pipeline.scoring import Scorer

INFO = ModelInfo("BirdNET_GLOBAL_6K_V2.4", "2.4", "FP32", "abc", 48_000, 3.0, 1024, 3)
LABELS = [
    Label.parse(t)
    for t in [
        "Engine_Engine",
        "Pica pica_Eurasian Magpie",
        "Poecile atricapillus_Black-capped Chickadee",
    ]
]


def test_sensitivity_shifts_logits_like_birdnet_analyzer_2() -> None:
    logits = np.array([[-30.0, -2.5, 0.0, 2.5, 30.0]], dtype=np.float32)
    scorer = Scorer(AnalysisParams(sensitivity=1.25), LABELS * 2)
    want = 1 / (1 + np.exp(-np.clip(logits + 2.5, -20, 20)))
    np.testing.assert_allclose(scorer.scores(logits[:, :5])[:, :5], want, rtol=1e-6)
    # BirdNET-Pi's and 1.x's scale is a slope, clipped at 15.
    slope = Scorer(AnalysisParams(sigmoid_slope=0.75), LABELS * 2).scores(logits[:, :5])
    np.testing.assert_allclose(slope, 1 / (1 + np.exp(-0.75 * np.clip(logits, -15, 15))), rtol=1e-6)
    with pytest.raises(ConfigError):
        AnalysisParams(sensitivity=2.0)
    with pytest.raises(ConfigError, match="alternatives"):
        AnalysisParams(sensitivity=1.25, sigmoid_slope=0.75)


def test_top_n_ignores_the_minimum_confidence() -> None:
    scores = np.array([[0.01, 0.02, 0.9], [0.3, 0.2, 0.1]], dtype=np.float32)
    top = Scorer(AnalysisParams(top_n=2, min_conf=0.5), LABELS).detections(scores)
    assert [[d.label for d in window] for window in top] == [[2, 1], [0, 1]]
    plain = Scorer(AnalysisParams(min_conf=0.25), LABELS).detections(scores)
    assert [[d.label for d in window] for window in plain] == [[2], [0]]


def test_keys_change_with_what_changes_results() -> None:
    base = AnalysisParams()
    assert base.window_key(INFO) == AnalysisParams().window_key(INFO)
    assert base.window_key(INFO) != AnalysisParams(overlap_s=1.0).window_key(INFO)
    assert base.window_key(INFO) != AnalysisParams(bandpass=Bandpass(500)).window_key(INFO)
    # Scoring parameters change the score key but not the window key.
    other = AnalysisParams(min_conf=0.5)
    assert base.window_key(INFO) == other.window_key(INFO)
    assert base.score_key(INFO) != other.score_key(INFO)
    changed_model = ModelInfo(**{**INFO.as_dict(), "sha256": "def"})
    assert base.window_key(INFO) != base.window_key(changed_model)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lat": 50.0},
        {"lat": 91.0, "lon": 0.0},
        {"lat": 0.0, "lon": 0.0, "week": 49},
        {"min_conf": 1.0},
        {"overlap_s": 3.0},
        {"top_k": 0},
    ],
)
def test_invalid_params(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        AnalysisParams(**kwargs)  # type: ignore[arg-type]


def test_species_by_label_scientific_or_common_name() -> None:
    assert resolve_species(["Pica pica_Eurasian Magpie"], LABELS) == (1,)
    assert resolve_species(["pica pica", "Black-capped Chickadee", "", "# note"], LABELS) == (1, 2)
    with pytest.raises(ConfigError, match="Corvus corax"):
        resolve_species(["Corvus corax", "Engine"], LABELS)


def test_species_list_file(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("Pica pica_Eurasian Magpie\nEngine_Engine\n")
    assert resolve_species(read_species_list(path), LABELS) == (0, 1)
    with pytest.raises(NotFound):
        read_species_list(tmp_path / "missing.txt")


def test_label_parsing() -> None:
    assert Label.parse("Engine_Engine") == Label("Engine", "Engine")
    assert Label.parse("Dog").key == "Dog_Dog"
