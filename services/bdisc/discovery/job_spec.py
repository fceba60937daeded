"""A discovery job's parameters as JSON (an API request, a job record), checked.

The same parameters as ``bdisc discover``: ``analysis``, ``subset``, ``prune``,
``cluster``, ``link`` (threshold) and ``review`` (montage_cap, audio_per_cluster, fmin,
fmax, cmap). Light to import (no plotting, no clustering libraries): the gateway checks
requests with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bdisc.discovery.clustering import ClusterParams
from bdisc.discovery.linking import LinkParams
from bdisc.discovery.prune import PruneRules
from bdisc.discovery.recordings import Subset
from bdisc.errors import ConfigError
from bdisc.params import AnalysisParams
from bdisc.render.spectrogram import SpectrogramStyle

SECTIONS = ("analysis", "subset", "prune", "cluster", "link", "review")
MAX_TILES = 500  # tiles (and snippets) of one cluster's montage
REVIEW_KEYS = ("montage_cap", "audio_per_cluster", "fmin", "fmax", "cmap")
STYLE_KEYS = ("fmin", "fmax", "cmap")
# Discovery windows overlap by 1.5 s unless asked otherwise (BirdNET-Analyzer users' and
# the paper's setting): every call of up to 1.5 s then falls whole into some window.
DISCOVERY_OVERLAP_S = 1.5
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class GroupOptions:
    """How a group (deployment) is clustered and what its review outputs show."""

    cluster: ClusterParams
    style: SpectrogramStyle
    montage_cap: int = 48
    audio_per_cluster: int | None = None  # None: every montage tile
    force: bool = False  # cluster again even when nothing changed


def discovery_params() -> AnalysisParams:
    """The analysis parameters of a discovery run when none are given."""
    return AnalysisParams(overlap_s=DISCOVERY_OVERLAP_S)


@dataclass(frozen=True)
class DiscoverySpec:
    params: AnalysisParams
    subset: Subset
    prune: PruneRules
    cluster: ClusterParams
    style: SpectrogramStyle
    link: LinkParams = field(default_factory=LinkParams)
    montage_cap: int = 48
    audio_per_cluster: int | None = None
    # A duplicates job of the project: the copies it lists are left out (``bdisc
    # discover --exclude`` with its duplicates_exclude.csv)
    exclude_duplicates: str | None = None

    @classmethod
    def from_dict(cls, job: dict[str, Any]) -> DiscoverySpec:
        """Raises ConfigError for anything ``bdisc discover`` would refuse."""
        review = dict(job.get("review") or {})
        unknown = sorted(set(review) - set(REVIEW_KEYS))
        if unknown:
            raise ConfigError(f"unknown review parameters: {', '.join(unknown)}")
        try:
            cluster = ClusterParams(**(job.get("cluster") or {}))
            style = SpectrogramStyle(**{k: review.pop(k) for k in STYLE_KEYS if k in review})
        except TypeError as exc:
            raise ConfigError(f"invalid parameters: {exc}") from exc
        try:
            cap = int(review.get("montage_cap", 48))
            clips = review.get("audio_per_cluster")
            clips = None if clips is None else int(clips)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"montage_cap and audio_per_cluster are numbers: {exc}") from exc
        if not 1 <= cap <= MAX_TILES or (clips is not None and not 0 <= clips <= MAX_TILES):
            raise ConfigError(
                f"montage_cap must be 1 to {MAX_TILES} and audio_per_cluster 0 to {MAX_TILES}"
            )
        try:
            band_ok = 0.0 <= float(style.fmin) < float(style.fmax) <= 200_000.0
        except (TypeError, ValueError):
            band_ok = False
        if not band_ok:
            raise ConfigError("spectrograms need 0 <= fmin < fmax <= 200000 Hz")
        exclude = job.get("exclude_duplicates")
        if exclude is not None and not (isinstance(exclude, str) and JOB_ID.match(exclude)):
            raise ConfigError(f"exclude_duplicates must be a duplicates job's id: {exclude!r}")
        return cls(
            params=AnalysisParams.from_dict(
                {"overlap_s": DISCOVERY_OVERLAP_S, **(job.get("analysis") or {})}
            ),
            subset=Subset.from_dict(job.get("subset") or {}),
            prune=PruneRules.from_dict(job.get("prune") or {}),
            cluster=cluster,
            style=style,
            link=LinkParams.from_dict(job.get("link") or {}),
            montage_cap=cap,
            audio_per_cluster=clips,
            exclude_duplicates=exclude,
        )

    @property
    def group_options(self) -> GroupOptions:
        return GroupOptions(self.cluster, self.style, self.montage_cap, self.audio_per_cluster)

    def as_dict(self) -> dict[str, Any]:
        """The inverse of ``from_dict`` (as carried in messages and job records)."""
        return {
            "analysis": self.params.as_dict(),
            "subset": self.subset.as_dict(),
            "prune": self.prune.as_dict(),
            "cluster": self.cluster.as_dict(),
            "link": self.link.as_dict(),
            "review": {
                "montage_cap": self.montage_cap,
                "audio_per_cluster": self.audio_per_cluster,
                "fmin": self.style.fmin,
                "fmax": self.style.fmax,
                "cmap": self.style.cmap,
            },
            **({"exclude_duplicates": self.exclude_duplicates} if self.exclude_duplicates else {}),
        }
