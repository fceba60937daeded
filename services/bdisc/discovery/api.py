"""``discover``: a folder tree of recordings -> clusters a person can review.

subset -> embed (resumable, shared with ``bdisc embed``) -> prune -> per group
(deployment, or all): UMAP + HDBSCAN -> clusters.csv, review.csv, times files, montages,
map, audio snippets, cluster prototypes, index.html -> link the clusters of every group
into sound types (sound_types.csv, the Type and SuggestedLabel columns). ``discovery.json``
records every parameter, the model provenance and what subsetting and pruning removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from bdisc.audio.reader import probe
from bdisc.audio.segments import read_segment
from bdisc.discovery.carry_labels import carry_labels
from bdisc.discovery.clustering import ClusterParams
from bdisc.discovery.exclude import excluded, read_exclusions
from bdisc.discovery.job_spec import DiscoverySpec, GroupOptions, discovery_params
from bdisc.discovery.labelled_sheet import cluster_labels, with_labels
from bdisc.discovery.linking import LinkParams, link_groups
from bdisc.discovery.prune import PruneRules, WindowClassifier
from bdisc.discovery.prune_by_results import ResultsRule, kept_by_results
from bdisc.discovery.raven_review import write_group_tables, write_job_table
from bdisc.discovery.recordings import Recording, Subset, find_recordings, select
from bdisc.discovery.relabel import match_clusters
from bdisc.discovery.review_outputs import GroupResult, cluster_group, group_settings
from bdisc.discovery.sheets import CLUSTERS_FILE, REVIEW_FILE, read_clusters, recording_path
from bdisc.discovery.windows import Windows, load_windows, prune_windows
from bdisc.errors import BdiscError, ConfigError
from bdisc.fsutil import atomic_write_text
from bdisc.interop.import_embeddings import Target, import_embeddings
from bdisc.logs import fields
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import ModelFactory, RunConfig
from bdisc.pipeline.summary import RunSummary
from bdisc.ports.label_store import LabelStore
from bdisc.render.page import write_index
from bdisc.render.spectrogram import SpectrogramStyle

log = logging.getLogger(__name__)

DISCOVERY_FILE = "discovery.json"
RESERVED = {"embeddings", ".bdisc"}


@dataclass(frozen=True)
class DiscoverConfig:
    root: Path
    out_dir: Path
    params: AnalysisParams = field(default_factory=discovery_params)
    subset: Subset = field(default_factory=Subset)
    prune: PruneRules = field(default_factory=PruneRules)
    cluster: ClusterParams = field(default_factory=ClusterParams)
    link: LinkParams = field(default_factory=LinkParams)
    group_by: Literal["folder", "all"] = "folder"
    montage_cap: int = 48
    audio_per_cluster: int | None = None  # None: every montage tile
    style: SpectrogramStyle = field(default_factory=SpectrogramStyle)
    workers: int = 1
    batch_size: int = 8
    force: bool = False
    progress: bool = True
    model_dir: Path | None = None
    # Labels kept as data (``bdisc review``): carried to the new clusters when a group is
    # clustered again, and shown in its review.csv.
    labels: LabelStore | None = None
    labels_job: str = "local"
    # BirdNET-Analyzer's embeddings (its database folder or 1.x text files) to start from
    # instead of embedding the audio.
    embeddings_from: Path | None = None
    # BirdNET-Analyzer result tables: keep the windows their detections cover (the label
    # and confidence rules then apply to those detections, not to the top labels).
    prune_by_results: Path | None = None
    # Spans to leave out (``bdisc duplicates``' duplicates_exclude.csv), before pruning.
    exclude: Path | None = None

    @classmethod
    def from_spec(cls, root: Path, out_dir: Path, spec: DiscoverySpec) -> DiscoverConfig:
        """From a discovery's checked parameters (a CLI run, a platform job)."""
        return cls(
            root,
            out_dir,
            params=spec.params,
            subset=spec.subset,
            prune=spec.prune,
            cluster=spec.cluster,
            link=spec.link,
            style=spec.style,
            montage_cap=spec.montage_cap,
            audio_per_cluster=spec.audio_per_cluster,
            progress=False,
        )

    @property
    def group_options(self) -> GroupOptions:
        return GroupOptions(
            self.cluster, self.style, self.montage_cap, self.audio_per_cluster, self.force
        )

    def __post_init__(self) -> None:
        if self.group_by not in ("folder", "all"):
            raise ConfigError(f"--group-by must be folder or all, got {self.group_by!r}")
        if self.montage_cap < 1 or (self.audio_per_cluster or 0) < 0:
            raise ConfigError("montage cap must be >= 1 and audio clips per cluster >= 0")


@dataclass
class DiscoverSummary:
    embed: RunSummary
    recordings_found: int
    recordings_used: int
    windows: int
    windows_kept: int
    removed_by_rule: dict[str, int]
    groups: list[GroupResult]
    index_html: Path
    sound_types: int = 0


def discover(
    config: DiscoverConfig,
    factory: ModelFactory | None = None,
    classifier: WindowClassifier | None = None,
) -> DiscoverSummary:
    out = config.out_dir
    found = find_recordings(config.root)
    clash = sorted({r.folder for r in found} & RESERVED)
    if clash:
        raise ConfigError(
            f"deployment folder name {clash[0]!r} is reserved for bdisc's own outputs: rename it"
        )
    recs, subset_report = select(found, config.subset)
    log.info(
        "recordings selected",
        extra=fields(
            found=len(found),
            kept=len(recs),
            no_timestamp=subset_report.no_timestamp,
            outside_time=subset_report.outside_time,
            not_sampled=subset_report.not_sampled,
        ),
    )
    run_config = RunConfig(
        out,
        config.params,
        config.workers,
        config.batch_size,
        config.force,
        config.progress,
        config.model_dir,
    )
    if config.embeddings_from is not None:
        embed_summary = import_embeddings(
            config.embeddings_from,
            [Target(r.path, r.rel) for r in recs],
            out,
            config.params,
            config.model_dir,
            config.force,
        )
    else:
        embed_summary = api.embed(
            [r.path for r in recs], run_config, factory=factory, base=config.root
        )
    windows, provenance = load_windows(recs, out)
    listed, left_out = _leave_out(windows, config.exclude)
    kept, removed = _prune(listed, config, classifier)
    if config.exclude is not None:
        removed = {"excluded": left_out, **removed}

    groups = ["all"] if config.group_by == "all" else sorted(set(kept.folder.tolist()))
    paths = {r.rel: r.path for r in recs}
    settings = {
        **group_settings(config.group_options, config.prune, removed, provenance),
        "subset": {**asdict(config.subset), "report": asdict(subset_report)},
        "group_by": config.group_by,
        **({"prune_by_results": str(config.prune_by_results)} if config.prune_by_results else {}),
    }

    def read_span(rel: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        return read_segment(paths[rel], start_s, end_s)

    results = []
    for name in groups:
        part = kept if name == "all" else kept.take(kept.folder == name)
        before = _window_clusters(out / name / CLUSTERS_FILE) if config.labels else {}
        result = cluster_group(name, part, out / name, settings, read_span, config.group_options)
        if config.labels is not None:
            _follow_labels(config.labels, config.labels_job, out / name, name, before, result)
        results.append(result)
    members = link_groups(out, groups, config.link)
    sound_types = len({m.type_id for m in members})
    _write_raven_review(out, groups, recs, kept)
    index = out / "index.html"
    write_index(
        index,
        "bdisc discovery",
        [(g.name, f"{g.name}/index.html", g.clusters) for g in results],
        [(m.type_id, m.folder, m.cluster, m.size) for m in members],
    )
    atomic_write_text(
        out / DISCOVERY_FILE,
        json.dumps(
            {
                **settings,
                "link": config.link.as_dict(),
                "sound_types": sound_types,
                "groups": [asdict(g) for g in results],
                "windows": len(windows),
                "windows_kept": len(kept),
            },
            indent=2,
            default=str,
        )
        + "\n",
    )
    return DiscoverSummary(
        embed_summary,
        len(found),
        len(recs),
        len(windows),
        len(kept),
        removed,
        results,
        index,
        sound_types,
    )


def _write_raven_review(
    out: Path, groups: Sequence[str], recs: Sequence[Recording], kept: Windows
) -> None:
    """Raven tables per cluster and for the job, Audacity tracks per recording."""
    used = set(zip(kept.folder.tolist(), kept.file.tolist(), strict=True))
    paths: dict[tuple[str, str], str] = {}
    durations: dict[str, float] = {}
    for r in recs:
        if (r.folder, r.file) not in used:
            continue
        try:
            durations[str(r.path)] = probe(r.path).duration_s
        except BdiscError as exc:
            log.warning(
                "not in the Raven tables", extra=fields(path=str(r.path), error=exc.message)
            )
            continue
        paths[(r.folder, r.file)] = str(r.path)
    for name in groups:
        if (out / name / CLUSTERS_FILE).is_file():
            rows = read_clusters(out / name / CLUSTERS_FILE)
            write_group_tables(out / name, name, rows, paths, durations)
    write_job_table(out, groups, paths, durations)


def _leave_out(windows: Windows, path: Path | None) -> tuple[Windows, int]:
    """The windows outside the spans listed in ``path``, and how many were left out."""
    if path is None:
        return windows, 0
    out = excluded(windows.rel, windows.start, windows.end, read_exclusions(path))
    log.info("windows left out", extra=fields(file=str(path), windows=int(out.sum())))
    return windows.take(~out), int(out.sum())


def _prune(
    windows: Windows, config: DiscoverConfig, classifier: WindowClassifier | None
) -> tuple[Windows, dict[str, int]]:
    """The pruning rules; with result tables, their detections decide first."""
    if config.prune_by_results is None:
        return prune_windows(windows, config.prune, classifier)
    rule = ResultsRule(config.prune_by_results, config.prune.labels, config.prune.min_conf)
    covered = kept_by_results(rule, windows.rel, windows.start, windows.end)
    rest = replace(config.prune, labels=(), min_conf=None)
    kept, removed = prune_windows(windows.take(covered), rest, classifier)
    return kept, {"results": int((~covered).sum()), **removed}


def _window_clusters(path: Path) -> dict[tuple[str, float, float], int]:
    """(recording, start_s, end_s) -> cluster of a group's clusters.csv (empty if none)."""
    if not path.is_file():
        return {}
    return {
        (recording_path(w.folder, w.file), w.start_s, w.end_s): w.cluster
        for w in read_clusters(path)
    }


def _follow_labels(
    store: LabelStore,
    job_id: str,
    folder_dir: Path,
    name: str,
    before: dict[tuple[str, float, float], int],
    result: GroupResult,
) -> None:
    """A group clustered again keeps its labels; its review.csv shows them."""
    if before and not result.skipped:
        moves = match_clusters(before, _window_clusters(folder_dir / CLUSTERS_FILE))
        carry_labels(store, job_id, name, moves)
    sheet = folder_dir / REVIEW_FILE
    if store.revision(job_id, name) and sheet.is_file():
        labels = cluster_labels(store, job_id, name)
        atomic_write_text(sheet, with_labels(sheet.read_text(encoding="utf-8"), labels))
