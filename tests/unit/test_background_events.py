"""The background group's guard for BirdNET's sound events (a dog, a gun, a siren)."""

from __future__ import annotations

import numpy as np
import pytest

from bdisc.discovery.background import BACKGROUND_CLUSTER, known_events
from bdisc.discovery.clustering import ClusterParams, cluster
from bdisc.discovery.quality import BASELINES
from bdisc.errors import ConfigError


def _bed_dog_bird() -> tuple[np.ndarray, np.ndarray]:
    """One recording: two background beds (160 windows) that overlap, 12 quiet 'barks'
    (the first bed plus two dimensions of their own: close to the recording's median,
    yet a cluster of their own) and a loud bird far from the beds (90)."""
    rng = np.random.default_rng(0)

    def blob(n: int, active: np.ndarray) -> np.ndarray:
        profile = np.full(64, 0.1)
        profile[active] = 3.0
        return rng.gamma(20.0, 0.05, (n, 64)) * profile

    data = np.vstack(
        [
            blob(80, np.arange(0, 32)),
            blob(80, np.arange(8, 40)),
            blob(12, np.r_[0:32, 40, 41]),
            blob(90, np.arange(44, 64)),
        ]
    ).astype(np.float32)
    return data, np.repeat([0, 1, 2], [160, 12, 90])


def _names(truth: np.ndarray, dog_score: float) -> tuple[np.ndarray, np.ndarray]:
    """BirdNET's top label per window: the beds as engines (0.9: not an event, no
    guard), the barks as a dog at ``dog_score``, the bird as a low-scoring bird."""
    names = np.select(
        [truth == 0, truth == 1], ["Engine_Engine", "Dog_Dog"], "Turdus merula_Eurasian Blackbird"
    )
    scores = np.select([truth == 0, truth == 1], [0.9, dog_score], 0.1)
    return names.astype(str), scores


def test_barks_birdnet_names_stay_out_of_the_background_group() -> None:
    data, truth = _bed_dog_bird()
    quiet = np.zeros(len(data))  # every window at the recording's median level

    def barks(params: ClusterParams, dog_score: float) -> np.ndarray:
        result = cluster(data, params, levels=quiet, birdnet=_names(truth, dog_score))
        assert result.background
        assert (result.labels[truth == 0] == BACKGROUND_CLUSTER).all()  # engines: no guard
        return np.asarray(result.labels[truth == 1])

    params = ClusterParams(seed=3)
    assert params.event_guard_score == 0.2  # on by default
    guarded = barks(params, dog_score=0.3)
    assert len(set(guarded.tolist())) == 1 and guarded[0] > BACKGROUND_CLUSTER
    # the precondition: without the guard (off, or named too weakly) the barks are
    # background, as a bark's windows are quiet and close to the recording's median
    assert (barks(ClusterParams(seed=3, event_guard_score=0.0), 0.3) == 0).all()
    assert (barks(params, dog_score=0.1) == 0).all()


def test_known_events_are_birdnet_sound_events_only() -> None:
    labels = np.array(["Dog_Dog", "Siren_Siren", "Engine_Engine", "Human vocal_Human vocal",
                       "Pica pica_Eurasian Magpie", "Dog_Dog", ""])  # fmt: skip
    scores = np.array([0.3, 0.5, 0.9, 0.9, 0.9, 0.1, 0.9])
    assert known_events(labels, scores, 0.2).tolist() == [1, 1, 0, 0, 0, 0, 0]
    assert not known_events(labels, scores, 0.0).any()  # 0: off


def test_event_guard_score_is_checked_and_off_in_the_baselines() -> None:
    with pytest.raises(ConfigError, match="event_guard_score"):
        ClusterParams(event_guard_score=1.5)
    assert all(p.event_guard_score == 0.0 for p in BASELINES.values())
