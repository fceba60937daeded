"""Labelled windows as a training set: embeddings, one label per window, and the
recording each window comes from (splits never put one recording on both sides).

Labels named like BirdNET-Analyzer's non-event classes (``Noise``, ``Other``,
``Background``, ``Silence``; any case) are not classes: their windows are negatives for
every class, as BirdNET-Analyzer's trainer and HawkEars treat them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bdisc.discovery.export import CONTROL_CHARACTERS
from bdisc.errors import ConfigError
from bdisc.logs import fields

log = logging.getLogger(__name__)

# BirdNET-Analyzer 2.4's cfg.NON_EVENT_CLASSES.
NEGATIVE_LABELS = frozenset({"noise", "other", "background", "silence"})
NEGATIVE = "Noise"  # how negatives are named in reports
# Control characters (export's rule, plus DEL, C1 and the Unicode line separators, which
# also end lines for some readers) have no place in a label.
LABEL_FORBIDDEN = re.compile(f"[{CONTROL_CHARACTERS}\\x7f-\\x9f\\u2028\\u2029]")


def is_negative(label: str) -> bool:
    return label.strip().casefold() in NEGATIVE_LABELS


@dataclass(frozen=True)
class TrainingSet:
    """Parallel arrays, one row per labelled window, in a stable order (by recording,
    then start): the same inputs always give the same set."""

    embeddings: np.ndarray  # float32 (N, D)
    labels: tuple[str, ...]  # per window, as the reviewer wrote it
    recordings: np.ndarray  # object (N,): the recording a window comes from
    starts: np.ndarray  # float64 (N,)
    classes: tuple[str, ...]  # the labels that are not negatives, sorted
    provenance: dict[str, Any]  # the embeddings' window provenance
    ends: np.ndarray | None = None  # float64 (N,), where the sources tell them

    def __post_init__(self) -> None:
        n = self.embeddings.shape[0]
        if not (len(self.labels) == len(self.recordings) == len(self.starts) == n):
            raise ValueError("training set arrays differ in length")
        if self.ends is not None and len(self.ends) != n:
            raise ValueError("training set arrays differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def targets(self) -> np.ndarray:
        """float32 (N, C): 1 where a window is its class; negatives are all zeros."""
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.zeros((len(self), len(self.classes)), dtype=np.float32)
        for row, label in enumerate(self.labels):
            if label in index:
                y[row, index[label]] = 1.0
        return y

    def reported_labels(self) -> list[str]:
        """Each window's label as reports show it (negatives as ``Noise``)."""
        return [NEGATIVE if is_negative(label) else label for label in self.labels]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.reported_labels()).items()))

    def digest(self) -> str:
        """SHA-256 of the sorted (recording, start, label) list: what was learnt from."""
        items = sorted(
            (str(r), round(float(s), 3), label)
            for r, s, label in zip(self.recordings, self.starts, self.labels, strict=True)
        )
        return hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()


def assemble(
    embeddings: np.ndarray,
    labels: Sequence[str],
    recordings: Sequence[str],
    starts: Sequence[float],
    provenance: dict[str, Any],
    ends: Sequence[float] | None = None,
) -> TrainingSet:
    """A training set in stable order. Refuses one without a class to learn, labels with
    control characters (a line break would split CustomClassifier_Labels.txt), embeddings
    that are not finite, and one window labelled twice with different labels; a window
    given twice with one label is kept once."""
    cleaned = [label.strip() for label in labels]
    for label in sorted(set(cleaned)):
        if LABEL_FORBIDDEN.search(label):
            raise ConfigError(
                f"label {label!r} holds a control character (a line break or tab): "
                "fix it in the review sheet",
                label=label,
            )
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(cleaned):
        raise ConfigError(f"embeddings of shape {matrix.shape} for {len(cleaned)} labels")
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"{int(bad.sum())} embeddings are not finite (NaN or infinite), the first of "
            f"{recordings[i]} at {float(starts[i]):g} s: embed the recording again",
            recording=str(recordings[i]),
        )
    order = sorted(range(len(cleaned)), key=lambda i: (recordings[i], starts[i], cleaned[i]))
    kept: dict[tuple[str, float], int] = {}
    for i in order:
        key = (str(recordings[i]), round(float(starts[i]), 3))
        first = kept.setdefault(key, i)
        if cleaned[first] != cleaned[i]:
            raise ConfigError(
                f"the window of {key[0]} at {key[1]:g} s is labelled both "
                f"{cleaned[first]!r} and {cleaned[i]!r}: give it one label",
                recording=key[0],
            )
    if len(kept) < len(order):
        log.warning(
            "windows given more than once were kept once",
            extra=fields(duplicates=len(order) - len(kept)),
        )
        order = [i for i in order if kept[(str(recordings[i]), round(float(starts[i]), 3))] == i]
    rows = np.asarray(order, dtype=np.int64)
    classes = tuple(
        sorted({cleaned[i] for i in order if cleaned[i] and not is_negative(cleaned[i])})
    )
    if not classes:
        raise ConfigError(
            "nothing to learn: no labelled window has a class (only negatives such as "
            "Noise, or no labels at all)"
        )
    return TrainingSet(
        np.ascontiguousarray(matrix[rows]),
        tuple(cleaned[i] for i in order),
        np.asarray([recordings[i] for i in order], dtype=object),
        np.asarray([float(starts[i]) for i in order], dtype=np.float64),
        classes,
        provenance,
        None if ends is None else np.asarray([float(ends[i]) for i in order], dtype=np.float64),
    )
