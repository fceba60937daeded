"""How good is a discovery run against known truth (a labelled mixture, or annotations)?

Per run (several deployments clustered, optionally linked into sound types):

- **discovered**: a sound type counts when some non-noise cluster holds at least
  ``min_windows`` of its windows at purity >= ``min_purity``; ``eligible`` types are those
  with at least ``min_windows`` windows at all (a type heard once cannot be discovered).
- **V-measure** of the clusters (cluster ids per deployment; each deployment's noise is
  one cluster) against the truth, with the background as one class.
- **review effort**: ``clusters`` a reviewer opens (non-noise clusters of every
  deployment); ``labels_unlinked``, the labels needed to name every cluster that carries
  a discovered type (one per such cluster), and ``labels_linked``, the same when one label
  names a whole sound type (one per distinct linked type among those clusters).
- **links**: a cluster joined to a sound type that already had a member is one link; it is
  ``wrong`` when the cluster's majority truth differs from the type's majority truth, and
  a ``species_mixup`` when both are sound types (not background): the link joins two
  different species. The other wrong links put a cluster whose windows are mostly
  background (a passing car, say: the mixtures' truth calls it background) into a
  species' type, or a call's cluster into a type of background events.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bdisc.discovery.clustering import ClusterParams

BACKGROUND = "background"

# The methods bdisc's default is measured against (bench/discovery_quality.py and its
# reduced test): the paper's, HDBSCAN on the Jensen-Shannon distance matrix; UMAP + leaf
# HDBSCAN, the usual strong recipe; and bdisc 0.1's default.
BASELINES: dict[str, ClusterParams] = {
    "paper-jsd": ClusterParams(
        method="jsd",
        n_components=2,
        min_dist=0.1,
        min_cluster_size=5,
        min_samples=None,
        background_threshold=0.0,
        named_group_score=0.0,
        event_guard_score=0.0,
    ),
    "umap-leaf": ClusterParams(
        n_components=2,
        min_dist=0.0,
        min_cluster_size=5,
        min_samples=None,
        selection="leaf",
        background_threshold=0.0,
        named_group_score=0.0,
        event_guard_score=0.0,
    ),
    "old-default": ClusterParams(
        n_components=2,
        min_dist=0.1,
        min_cluster_size=5,
        min_samples=None,
        background_threshold=0.0,
        named_group_score=0.0,
        event_guard_score=0.0,
    ),
}


@dataclass(frozen=True)
class Quality:
    eligible: list[str]
    discovered: list[str]
    v_measure: float
    clusters: int
    labels_unlinked: int
    labels_linked: int
    links: int
    wrong_links: int
    species_mixups: int = 0
    purity_of: dict[str, float] = field(default_factory=dict)  # best qualifying purity

    @property
    def discovered_share(self) -> float:
        return len(self.discovered) / max(1, len(self.eligible))

    @property
    def labels_per_type(self) -> float:
        return self.labels_linked / max(1, len(self.discovered))

    @property
    def wrong_link_share(self) -> float:
        return self.wrong_links / max(1, self.links)

    @property
    def mixup_share(self) -> float:
        return self.species_mixups / max(1, self.links)


def v_measure(truth: Sequence[str], clusters: Sequence[object]) -> float:
    """Harmonic mean of homogeneity and completeness (Rosenberg and Hirschberg 2007)."""
    from sklearn.metrics import v_measure_score

    return float(v_measure_score([str(t) for t in truth], [str(k) for k in clusters]))


def score(
    folders: Sequence[str],
    clusters: Sequence[int],
    truth: Sequence[str],
    types: Mapping[tuple[str, int], int | str] | None = None,
    min_windows: int = 3,
    min_purity: float = 0.7,
) -> Quality:
    """``folders``, ``clusters`` and ``truth`` are parallel, one entry per window;
    ``types`` maps (folder, cluster) to a sound-type id for linked runs."""
    members: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for f, k, t in zip(folders, clusters, truth, strict=True):
        members[(f, int(k))][t] += 1
    totals = Counter(truth)
    eligible = sorted(t for t, n in totals.items() if t != BACKGROUND and n >= min_windows)
    purity_of: dict[str, float] = {}
    carriers: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for key, counts in members.items():
        if key[1] < 0:
            continue
        size = sum(counts.values())
        for name, n in counts.items():
            if name != BACKGROUND and n >= min_windows and n / size >= min_purity:
                purity_of[name] = max(purity_of.get(name, 0.0), n / size)
                carriers[name].append(key)
    discovered = sorted(t for t in eligible if t in purity_of)
    unlinked = sum(len(carriers[t]) for t in discovered)
    if types is None:
        linked = unlinked
    else:
        linked = sum(len({types.get(k, f"{k[0]}/{k[1]}") for k in carriers[t]}) for t in discovered)
    links = wrong = mixups = 0
    if types is not None:
        by_type: dict[int | str, list[tuple[str, int]]] = defaultdict(list)
        for key, type_id in types.items():
            if key[1] >= 0 and key in members:
                by_type[type_id].append(key)
        for group_keys in by_type.values():
            if len(group_keys) < 2:
                continue
            majority = [members[g].most_common(1)[0][0] for g in group_keys]
            pooled: Counter[str] = Counter()
            for g in group_keys:
                pooled.update(members[g])
            top = pooled.most_common(1)[0][0]
            links += len(group_keys) - 1
            wrong += min(len(group_keys) - 1, sum(m != top for m in majority))
            if top != BACKGROUND:
                mixups += min(
                    len(group_keys) - 1, sum(m not in (top, BACKGROUND) for m in majority)
                )
    cluster_ids = [f"{f}/{k}" for f, k in zip(folders, clusters, strict=True)]
    return Quality(
        eligible,
        discovered,
        round(v_measure(truth, cluster_ids), 4),
        sum(1 for k in members if k[1] >= 0),
        unlinked,
        linked,
        links,
        wrong,
        mixups,
        purity_of,
    )
