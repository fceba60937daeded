"""Which windows go on to clustering. Off by default: discovery must not depend on
BirdNET already knowing a sound. Each rule reports how many windows it removed.

Rules, applied in this order:
  drop_silence_db   drop windows quieter than this level (dBFS)
  labels            keep windows whose top BirdNET label matches a name or pattern
  any_bird          drop windows whose top label is one of BirdNET's non-bird classes
  classes           keep windows whose top class under a custom classifier is listed
  min_conf          keep windows whose top score is at least this
  top_n_per_file    keep the N best-scoring windows of each recording
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bdisc.errors import ConfigError
from bdisc.model.labels import Label

# BirdNET V2.4's human, machine and environment classes (label = "X_X").
NON_BIRD_CLASSES = frozenset(
    {
        "Dog",
        "Engine",
        "Environmental",
        "Fireworks",
        "Gun",
        "Human non-vocal",
        "Human vocal",
        "Human whistle",
        "Noise",
        "Power tools",
        "Siren",
    }
)
# Of those, the short events a recorder picks up over its background, not the background
# itself (engines, wind, voices): see ``background.known_events``.
SOUND_EVENT_CLASSES = frozenset({"Dog", "Fireworks", "Gun", "Power tools", "Siren"})


def is_non_bird(label_key: str) -> bool:
    """Non-bird by BirdNET's naming: the classes above, and labels without a common name
    (scientific == common, e.g. the crickets). Frogs, mammals and insects that BirdNET
    knows by common names are not recognised: no taxonomy table ships with the model."""
    label = Label.parse(label_key)
    return label.scientific in NON_BIRD_CLASSES or label.scientific == label.common


class WindowClassifier(Protocol):
    """A custom classifier head over embeddings (the training work provides these)."""

    def top_class(self, embeddings: np.ndarray) -> list[str]: ...


@dataclass(frozen=True)
class PruneRules:
    drop_silence_db: float | None = None
    labels: tuple[str, ...] = ()
    any_bird: bool = False
    classes: tuple[str, ...] = ()
    min_conf: float | None = None
    top_n_per_file: int | None = None

    def __post_init__(self) -> None:
        if self.min_conf is not None and not 0.0 <= self.min_conf <= 1.0:
            raise ConfigError(f"prune confidence must be in [0, 1], got {self.min_conf}")
        if self.top_n_per_file is not None and not 1 <= self.top_n_per_file <= 100_000:
            raise ConfigError(f"top-N per file must be 1 to 100000, got {self.top_n_per_file}")
        if len(self.labels) + len(self.classes) > 10_000:
            raise ConfigError("at most 10000 label patterns")

    @property
    def active(self) -> bool:
        return any(
            [
                self.drop_silence_db is not None,
                self.labels,
                self.any_bird,
                self.classes,
                self.min_conf is not None,
                self.top_n_per_file is not None,
            ]
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruneRules:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown prune parameters: {', '.join(unknown)}")
        values = dict(data)
        for name in ("labels", "classes"):
            if name in values:
                values[name] = tuple(values[name] or ())
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drop_silence_db": self.drop_silence_db,
            "labels": list(self.labels),
            "any_bird": self.any_bird,
            "classes": list(self.classes),
            "min_conf": self.min_conf,
            "top_n_per_file": self.top_n_per_file,
        }


def label_matches(key: str, patterns: tuple[str, ...]) -> bool:
    label = Label.parse(key)
    names = (key.casefold(), label.scientific.casefold(), label.common.casefold())
    return any(fnmatch.fnmatchcase(n, p.casefold()) for p in patterns for n in names)


def prune(
    top_label: np.ndarray,  # str (N,)
    top_score: np.ndarray,  # float (N,)
    level_db: np.ndarray,  # float (N,)
    recording: np.ndarray,  # str (N,)
    rules: PruneRules,
    embeddings: np.ndarray | None = None,
    classifier: WindowClassifier | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """(boolean mask of kept windows, windows removed per rule)."""
    keep = np.ones(len(top_label), dtype=bool)
    removed: dict[str, int] = {}

    def apply(name: str, passes: np.ndarray) -> None:
        nonlocal keep
        before = int(keep.sum())
        keep = keep & passes
        removed[name] = before - int(keep.sum())

    if rules.drop_silence_db is not None:
        if np.isnan(level_db).any():
            raise ConfigError(
                "--drop-silence needs the windows' audio levels, which embeddings imported "
                "from BirdNET-Analyzer do not have"
            )
        apply("silence", level_db >= rules.drop_silence_db)
    if rules.labels:
        apply("labels", np.array([label_matches(k, rules.labels) for k in top_label], bool))
    if rules.any_bird:
        apply("non_bird", np.array([not is_non_bird(k) for k in top_label], dtype=bool))
    if rules.classes:
        if classifier is None or embeddings is None:
            raise ConfigError("pruning by classes needs a custom classifier")
        tops = classifier.top_class(embeddings)
        apply("classes", np.array([t in rules.classes for t in tops], dtype=bool))
    if rules.min_conf is not None:
        apply("confidence", top_score >= rules.min_conf)
    if rules.top_n_per_file is not None:
        best = np.zeros(len(keep), dtype=bool)
        for rec in np.unique(recording[keep]):
            idx = np.flatnonzero(keep & (recording == rec))
            best[idx[np.argsort(-top_score[idx], kind="stable")[: rules.top_n_per_file]]] = True
        apply("top_n_per_file", best)
    return keep, removed
