from __future__ import annotations

from pathlib import Path

import pytest

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import ConfigError, NotFound
from bdisc.model.labels import Label, read_species_list, resolve_species
from bdisc.model.port import ModelInfo
from bdisc.params import AnalysisParams

INFO = ModelInfo("BirdNET_GLOBAL_6K_V2.4", "2.4", "FP32", "abc", 48_000, 3.0, 1024, 3)
LABELS = [
    Label.parse(t)
    for t in [
        "Engine_Engine",
        "Pica pica_Eurasian Magpie",
        "Poecile atricapillus_Black-capped Chickadee",
    ]
]


def test_sensitivity_maps_like_birdnet_analyzer() -> None:
    assert AnalysisParams(sensitivity=1.0).sigmoid_multiplier == 1.0
    assert AnalysisParams(sensitivity=1.25).sigmoid_multiplier == 0.75
    assert AnalysisParams(sensitivity=1.5).sigmoid_multiplier == 0.5
    with pytest.raises(ConfigError):
        AnalysisParams(sensitivity=2.0)


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
