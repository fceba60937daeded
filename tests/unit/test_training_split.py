"""Validation splits by recording: never one recording on both sides, deterministic from
the seed, every label with two recordings or more on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from bdisc.errors import ConfigError
from bdisc.training.split import folds_by_recording, split_by_recording


def _windows() -> tuple[np.ndarray, tuple[str, ...]]:
    rng = np.random.default_rng(0)
    recs, labels = [], []
    plan = {"Piha": 6, "Hermit": 3, "Noise": 5, "Rare": 1}
    for label, n in plan.items():
        for r in range(n):
            windows = int(rng.integers(1, 12))
            recs += [f"{label}/rec{r}.wav"] * windows
            labels += [label] * windows
    return np.asarray(recs, dtype=object), tuple(labels)


def test_split_keeps_recordings_whole_and_labels_on_both_sides() -> None:
    recs, labels = _windows()
    train, val = split_by_recording(recs, labels, 0.3, seed=1)
    assert sorted([*train, *val]) == list(range(len(recs)))
    assert not set(recs[train]) & set(recs[val])
    for label in ("Piha", "Hermit", "Noise"):
        rows = [i for i, lab in enumerate(labels) if lab == label]
        assert set(rows) & set(train) and set(rows) & set(val), label
    assert {labels[i] for i in val} >= {"Piha", "Hermit", "Noise"}
    assert "Rare" not in {labels[i] for i in val}  # one recording: training only
    n_val = len(set(recs[val]))
    assert 3 <= n_val <= 6  # about 30 % of 15 recordings


def test_split_is_deterministic_from_its_seed() -> None:
    recs, labels = _windows()
    a = split_by_recording(recs, labels, 0.3, seed=1)
    b = split_by_recording(recs, labels, 0.3, seed=1)
    c = split_by_recording(recs, labels, 0.3, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_folds_validate_every_recording_once() -> None:
    recs, labels = _windows()
    folds = folds_by_recording(recs, labels, 3, seed=0)
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen) == list(range(len(recs)))
    for train, val in folds:
        assert not set(recs[train]) & set(recs[val])
    piha = {str(r) for r, lab in zip(recs, labels, strict=True) if lab == "Piha"}
    assert all(len(piha & {str(r) for r in recs[val]}) == 2 for _, val in folds)


def test_bad_splits_are_refused() -> None:
    recs, labels = _windows()
    with pytest.raises(ConfigError):
        split_by_recording(recs, labels, 1.0, seed=0)
    with pytest.raises(ConfigError):
        folds_by_recording(recs, labels, 40, seed=0)
    one = np.asarray(["a"] * 3, dtype=object)
    with pytest.raises(ConfigError):
        split_by_recording(one, ("x",) * 3, 0.2, seed=0)
