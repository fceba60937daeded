"""Sound types: the same sound clustered in several deployments, linked project-wide.

Ecologists cluster per deployment and would otherwise name the same call again at every
site. After clustering, every cluster gets a **prototype**: the mean of its windows' unit
embeddings minus its deployment's background (the median unit embedding of the
deployment's windows, which is mostly background), scaled to unit length. Subtracting
the background lets the same call heard over street noise at one site and over a quiet
night at another point the same way. Prototypes are joined by average-linkage
agglomerative clustering on cosine distance, cut at ``threshold``; each resulting group
is a sound type. Clusters of one deployment can be linked too (a call split in two). The
background groups of all deployments (``background.py``) form one type, 0: named once.

The threshold (0.72) was calibrated on ``bench/discovery_quality.py`` (six runs, with
the background group and BirdNET's event guard): 0.5 / 0.6 / 0.65 / 0.7 / 0.72 / 0.75 /
0.8 named every discovered type with 1.52 / 1.34 / 1.26 / 1.22 / 1.18 / 1.14 / 1.11
labels; 1.8 / 2.7 / 2.6 / 4.2 / 4.1 / 4.4 / 4.9 % of links joined two different species,
and 8.4 / 10.9 / 11.7 / 13.9 / 14.1 / 15.1 / 17.9 % of links were wrong in any way (most
of the others put a cluster of background events, a passing car say, into a species'
type). 0.72 is the lowest threshold that names every type with at most 1.2 labels, and
keeps links between two species under 5 %; a linked label is only ever a suggestion
(``SuggestedLabel``), so a wrong one is seen and overruled, never applied silently. A
reviewer who would rather see fewer wrong suggestions sets ``--link-threshold 0.6``
(1.34 labels per type, 2.7 % of links between species). Between sites the same species'
pure clusters lie 0.41 apart (median) and different species' 0.81 or more (2nd
percentile); what keeps the labels above one per species is mostly real call types:
the Screaming Piha's short notes (0.4-0.8 s) and full songs (1.7-2 s) become two types,
each linked across the sites. Type ids are
stable: the same clusters give the same ids (ordered by size, then by folder and
cluster). A type's ``strength`` per member is the cosine similarity of the member's
prototype to the type's mean prototype (1.0 for a type of one cluster).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.discovery.background import BACKGROUND_CLUSTER, median_unit, unit_rows
from bdisc.discovery.sheets import CLUSTERS_FILE, REVIEW_FILE, annotate_types, read_review
from bdisc.errors import BdiscError, ConfigError
from bdisc.fsutil import atomic_write_text
from bdisc.logs import fields

log = logging.getLogger(__name__)

SOUND_TYPES_FILE = "sound_types.csv"
PROTOTYPES_FILE = "prototypes.npz"
BACKGROUND_TYPE = 0  # every deployment's background group
SOUND_TYPE_COLUMNS = ["type", "folder", "cluster", "size", "strength", "type_size", "members"]


@dataclass(frozen=True)
class LinkParams:
    threshold: float = 0.72  # cosine distance between prototypes; 0: no linking

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 2.0:
            raise ConfigError(f"link threshold must be in [0, 2], got {self.threshold}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkParams:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown link parameters: {', '.join(unknown)}")
        try:
            return cls(**{k: float(v) for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid link parameters: {exc}") from exc


@dataclass(frozen=True)
class Prototypes:
    """One deployment's cluster prototypes (unit vectors), as the clustering wrote them."""

    folder: str
    clusters: np.ndarray  # int (K,)
    sizes: np.ndarray  # int (K,)
    vectors: np.ndarray  # float32 (K, D)
    background: int = -1  # the background cluster (background.py), -1: none

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            folder=np.array(self.folder),
            clusters=self.clusters,
            sizes=self.sizes,
            vectors=self.vectors,
            background=np.array(self.background),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Prototypes:
        with np.load(path) as data:
            return cls(
                str(data["folder"]),
                data["clusters"],
                data["sizes"],
                data["vectors"],
                int(data["background"]),
            )


def prototypes(
    folder: str, embeddings: np.ndarray, labels: np.ndarray, background: bool = False
) -> Prototypes:
    """Background-subtracted unit prototypes of a deployment's clusters (noise excluded);
    ``background``: cluster 0 is the deployment's background group."""
    floor = median_unit(embeddings)
    ks = np.array(sorted(k for k in set(labels.tolist()) if k >= 0), dtype=np.int64)
    sums = np.zeros((len(ks), embeddings.shape[1]))
    # Cluster sums over chunks of windows sorted by cluster: memory stays one chunk.
    keep = np.flatnonzero(labels >= 0)
    order = keep[np.argsort(labels[keep], kind="stable")]
    for start in range(0, len(order), 50_000):
        rows = order[start : start + 50_000]
        lab = labels[rows]
        bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
        part = np.add.reduceat(unit_rows(embeddings[rows]).astype(np.float64), bounds, axis=0)
        np.add.at(sums, np.searchsorted(ks, lab[bounds]), part)
    sizes = np.bincount(np.searchsorted(ks, labels[keep]), minlength=len(ks)).astype(np.int64)
    d = sums / np.maximum(sizes, 1)[:, None] - floor
    vectors = (d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-12)).astype(np.float32)
    return Prototypes(folder, ks, sizes, vectors, BACKGROUND_CLUSTER if background else -1)


@dataclass(frozen=True)
class Member:
    type_id: int
    folder: str
    cluster: int
    size: int
    strength: float


def link(groups: Sequence[Prototypes], params: LinkParams) -> list[Member]:
    """Every cluster of every group, with the sound type it belongs to: the background
    groups of all deployments are one type, 0; the other clusters are linked by their
    prototypes into types numbered from 1."""
    background = [
        Member(BACKGROUND_TYPE, g.folder, g.background, int(n), 1.0)
        for g in groups
        for k, n in zip(g.clusters, g.sizes, strict=True)
        if k == g.background
    ]
    return sorted(
        background + _link_calls(groups, params), key=lambda m: (m.type_id, m.folder, m.cluster)
    )


def _link_calls(groups: Sequence[Prototypes], params: LinkParams) -> list[Member]:
    masks = [g.clusters != g.background for g in groups]
    keys = [
        (g.folder, int(k), int(n))
        for g, mask in zip(groups, masks, strict=True)
        for k, n in zip(g.clusters[mask], g.sizes[mask], strict=True)
    ]
    if not keys:
        return []
    vectors = np.concatenate(
        [g.vectors[mask] for g, mask in zip(groups, masks, strict=True)]
    ).astype(np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    # A cluster that is the deployment's median itself (digital silence, say) has no
    # direction: it keeps a type of its own, as do non-finite prototypes.
    valid = np.isfinite(vectors).all(axis=1) & (norms > 1e-6)
    vectors = np.where(valid[:, None], vectors / np.where(valid, norms, 1.0)[:, None], 0.0)
    raw = np.arange(len(keys), dtype=np.int64) + len(keys)  # unlinked: a type each
    if valid.sum() > 1 and params.threshold > 0:
        from scipy.cluster.hierarchy import fcluster, linkage

        tree = linkage(vectors[valid], "average", metric="cosine")
        raw[valid] = np.asarray(fcluster(tree, params.threshold, "distance"), dtype=np.int64)
    # Stable ids: largest type first, ties by its first (folder, cluster).
    _, inverse = np.unique(raw, return_inverse=True)
    by_type = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    order = sorted(
        by_type, key=lambda idx: (-sum(keys[i][2] for i in idx), min(keys[i][:2] for i in idx))
    )
    members = []
    for n, idx in enumerate(order, start=1):
        centre = vectors[idx].mean(axis=0)
        centre /= np.linalg.norm(centre) + 1e-12
        for i in idx:
            folder, cluster, size = keys[i]
            members.append(Member(n, folder, cluster, size, round(float(vectors[i] @ centre), 4)))
    return sorted(members, key=lambda m: (m.type_id, m.folder, m.cluster))


def link_results(results: Path, folders: Iterable[str], params: LinkParams) -> list[Member]:
    """Link the prototypes the clustering wrote under ``results/<folder>/`` and write
    ``results/sound_types.csv``; deployments without clusters are skipped."""
    groups = [
        Prototypes.load(results / f / PROTOTYPES_FILE)
        for f in sorted(folders)
        if (results / f / PROTOTYPES_FILE).is_file()
    ]
    members = link(groups, params)
    write_sound_types(results / SOUND_TYPES_FILE, members)
    return members


def write_sound_types(path: Path, members: Sequence[Member]) -> None:
    by_type: dict[int, list[Member]] = {}
    for m in members:
        by_type.setdefault(m.type_id, []).append(m)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SOUND_TYPE_COLUMNS)
    for m in members:
        mates = by_type[m.type_id]
        writer.writerow(
            [
                m.type_id,
                m.folder,
                m.cluster,
                m.size,
                f"{m.strength:.4f}",
                sum(x.size for x in mates),
                len(mates),
            ]
        )
    atomic_write_text(path, buf.getvalue())


def read_sound_types(path: Path) -> dict[tuple[str, int], int]:
    """(folder, cluster) -> type id; empty when the run has no sound types."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {(r["folder"], int(r["cluster"])): int(r["type"]) for r in csv.DictReader(f)}


def suggestions(
    types: Mapping[tuple[str, int], int], labels: Mapping[tuple[str, int], str]
) -> dict[tuple[str, int], str]:
    """For every unlabelled cluster of a type, the label its type-mates were given (the
    most frequent one; ties as ``a | b``). Labelled clusters get no suggestion."""
    given: dict[int, Counter[str]] = {}
    for key, label in labels.items():
        if label and key in types:
            given.setdefault(types[key], Counter())[label] += 1
    out = {}
    for key, type_id in types.items():
        if labels.get(key) or type_id not in given:
            continue
        counts = given[type_id].most_common()
        best = [name for name, n in counts if n == counts[0][1]]
        out[key] = " | ".join(sorted(best))
    return out


def link_groups(out: Path, groups: Sequence[str], params: LinkParams) -> list[Member]:
    """Link every group's clusters into sound types (``sound_types.csv``), then write each
    cluster's type and the labels suggested by its type-mates into the group's sheets
    (labels already given are kept). Cheap: it reads prototypes, not embeddings."""
    members = link_results(out, groups, params)
    annotate_groups(out, groups, members)
    log.info(
        "clusters linked into sound types",
        extra=fields(
            clusters=len(members),
            sound_types=len({m.type_id for m in members}),
            file=SOUND_TYPES_FILE,
        ),
    )
    return members


def annotate_groups(
    out: Path,
    groups: Sequence[str],
    members: Sequence[Member],
    only: Sequence[str] | None = None,
) -> None:
    """Write types and suggestions (from the labels of every group) into the sheets of
    ``groups`` under ``out``, or of ``only`` these. A sheet that cannot be read is
    reported and left alone; the others go on."""
    types = {(m.folder, m.cluster): m.type_id for m in members}
    suggested = suggestions(types, given_labels(out, groups))
    for name in groups if only is None else only:
        if not (out / name / CLUSTERS_FILE).is_file():
            continue
        try:
            annotate_types(out / name, name, types, suggested)
        except BdiscError as exc:
            log.warning("sheet not annotated", extra=fields(group=name, error=str(exc)))


def given_labels(out: Path, groups: Iterable[str]) -> dict[tuple[str, int], str]:
    """(group, cluster) -> label, from the review sheets of these groups under ``out``
    (unreadable sheets are reported and skipped)."""
    labels: dict[tuple[str, int], str] = {}
    for name in groups:
        sheet = out / name / REVIEW_FILE
        if not sheet.is_file():
            continue
        try:
            labels.update({(name, e.cluster): e.label for e in read_review(sheet) if e.label})
        except (BdiscError, UnicodeDecodeError) as exc:
            log.warning("review sheet not read", extra=fields(group=name, error=str(exc)))
    return labels
