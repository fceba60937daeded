"""Validation splits by recording: the windows of one recording are never on both sides
(neighbouring windows of one recording are near copies, and would flatter the scores).
Both splits are deterministic from their seed."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bdisc.errors import ConfigError


def _main_labels(recordings: np.ndarray, labels: tuple[str, ...]) -> dict[str, str]:
    """Each recording's most frequent label (ties: the first in sort order)."""
    by_recording: dict[str, Counter[str]] = {}
    for recording, label in zip(recordings, labels, strict=True):
        by_recording.setdefault(str(recording), Counter())[label] += 1
    return {
        r: min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        for r, counts in by_recording.items()
    }


def _shuffled(recordings: np.ndarray, seed: int) -> list[str]:
    unique = sorted({str(r) for r in recordings})
    order = np.random.default_rng(seed).permutation(len(unique))
    return [unique[i] for i in order]


def split_by_recording(
    recordings: np.ndarray, labels: tuple[str, ...], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): about ``fraction`` of the recordings validate.
    Stratified by each recording's main label, so that every label with at least two
    recordings is on both sides."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    main = _main_labels(recordings, labels)
    if len(main) < 2:
        raise ConfigError("a validation split needs at least two recordings")
    shuffled = _shuffled(recordings, seed)
    by_label: dict[str, list[str]] = {}
    for r in shuffled:
        by_label.setdefault(main[r], []).append(r)
    validation: set[str] = set()
    for label in sorted(by_label):
        members = by_label[label]
        if len(members) >= 2:
            take = min(len(members) - 1, max(1, round(fraction * len(members))))
            validation.update(members[:take])
    if not validation:  # every label has a single recording: validate on some of them
        validation.update(shuffled[: max(1, round(fraction * len(shuffled)))])
    if len(validation) == len(shuffled):
        validation.discard(shuffled[-1])
    in_validation = np.asarray([str(r) in validation for r in recordings], dtype=bool)
    return np.flatnonzero(~in_validation), np.flatnonzero(in_validation)


def folds_by_recording(
    recordings: np.ndarray, labels: tuple[str, ...], k: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train rows, validation rows) pairs; each recording validates in exactly one
    fold. Recordings are dealt to the folds label by label, so each label is spread."""
    main = _main_labels(recordings, labels)
    if k < 2:
        raise ConfigError(f"k-fold needs at least 2 folds, got {k}")
    if k > len(main):
        raise ConfigError(f"{k} folds but only {len(main)} recordings")
    shuffled = _shuffled(recordings, seed)
    dealt = sorted(shuffled, key=lambda r: main[r])  # stable: shuffled within a label
    fold_of = {r: i % k for i, r in enumerate(dealt)}
    assignment = np.asarray([fold_of[str(r)] for r in recordings])
    return [(np.flatnonzero(assignment != f), np.flatnonzero(assignment == f)) for f in range(k)]
