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
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import soundfile as sf
import soxr

from bdisc.audio.segments import read_segment
from bdisc.discovery.background import BACKGROUND_CLUSTER
from bdisc.discovery.clustering import ClusterParams, cluster
from bdisc.discovery.job_spec import DiscoverySpec, discovery_params
from bdisc.discovery.linking import PROTOTYPES_FILE, LinkParams, link_groups, prototypes
from bdisc.discovery.prune import PruneRules, WindowClassifier, prune
from bdisc.discovery.recordings import Recording, Subset, find_recordings, select
from bdisc.discovery.sheets import (
    CLUSTERS_FILE,
    REVIEW_FILE,
    WindowRow,
    read_review,
    top_labels,
    write_clusters,
    write_review,
    write_times,
)
from bdisc.errors import BdiscError, ConfigError, NotFound
from bdisc.fsutil import atomic_write_text
from bdisc.logs import fields
from bdisc.outputs.embeddings import SUFFIX, read_embeddings
from bdisc.pipeline import api
from bdisc.pipeline.params import AnalysisParams, stable_hash
from bdisc.pipeline.runner import ModelFactory, RunConfig
from bdisc.pipeline.summary import RunSummary
from bdisc.render.montage import pick_members, render_map, render_montage
from bdisc.render.page import ClipLink, ClusterSection, write_group_page, write_index
from bdisc.render.spectrogram import SpectrogramStyle

log = logging.getLogger(__name__)

DISCOVERY_FILE = "discovery.json"
RESERVED = {"embeddings", ".bdisc"}
SNIPPET_FORMAT = ("OGG", "VORBIS")
SNIPPET_MAX_RATE = 48_000


SpanReader = Callable[[str, float, float], tuple[np.ndarray, int]]


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

    @classmethod
    def from_job(cls, root: Path, out_dir: Path, job: dict[str, Any]) -> DiscoverConfig:
        """From a platform job's parameters (see ``DiscoverySpec``)."""
        spec = DiscoverySpec.from_dict(job)
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

    def __post_init__(self) -> None:
        if self.group_by not in ("folder", "all"):
            raise ConfigError(f"--group-by must be folder or all, got {self.group_by!r}")
        if self.montage_cap < 1 or (self.audio_per_cluster or 0) < 0:
            raise ConfigError("montage cap must be >= 1 and audio clips per cluster >= 0")


@dataclass
class GroupResult:
    name: str
    windows: int
    clusters: int
    noise: int
    skipped: bool = False
    pca_used: int = 0
    min_cluster_size: int = 0


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


@dataclass
class Windows:
    """All windows of the run as parallel arrays."""

    rel: np.ndarray
    folder: np.ndarray
    file: np.ndarray
    start: np.ndarray
    end: np.ndarray
    embedding: np.ndarray
    top_label: np.ndarray
    top_score: np.ndarray
    level: np.ndarray

    def take(self, mask: np.ndarray) -> Windows:
        return Windows(**{k: v[mask] for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return len(self.rel)


def windows_from_files(
    files: Sequence[Path], where: dict[str, tuple[str, str]]
) -> tuple[Windows, dict[str, Any]]:
    """All windows of these embeddings files; ``where`` maps each recording (its relative
    path, as the files name it) to its (folder, file). Refuses mixed provenance."""
    if not files:
        raise NotFound("no recording could be embedded: see errors.csv in the output folder")
    table, provenance = read_embeddings(files)
    rel = np.array(table.column("recording").to_pylist(), dtype=object)
    tops = table.column("top_labels").to_pylist()
    scores = table.column("top_scores").to_pylist()
    return Windows(
        rel=rel,
        folder=np.array([where[r][0] for r in rel], dtype=object),
        file=np.array([where[r][1] for r in rel], dtype=object),
        start=table.column("start_s").to_numpy(),
        end=table.column("end_s").to_numpy(),
        embedding=_embedding_matrix(table),
        top_label=np.array([t[0] if t else "" for t in tops], dtype=object),
        top_score=np.array([s[0] if s else 0.0 for s in scores], dtype=np.float64),
        level=table.column("rms_dbfs").to_numpy(),
    ), provenance


def prune_windows(
    windows: Windows, rules: PruneRules, classifier: WindowClassifier | None = None
) -> tuple[Windows, dict[str, int]]:
    """The windows the rules keep, and how many each rule removed."""
    keep, removed = prune(
        windows.top_label,
        windows.top_score,
        windows.level,
        windows.rel,
        rules,
        windows.embedding,
        classifier,
    )
    kept = windows.take(keep)
    log.info("windows pruned", extra=fields(windows=len(windows), kept=len(kept), **removed))
    return kept, removed


def load_windows(recs: Sequence[Recording], out_dir: Path) -> tuple[Windows, dict[str, Any]]:
    files = [out_dir / "embeddings" / Path(r.rel).with_suffix(SUFFIX).as_posix() for r in recs]
    return windows_from_files(
        [f for f in files if f.is_file()], {r.rel: (r.folder, r.file) for r in recs}
    )


def _embedding_matrix(table: pa.Table) -> np.ndarray:
    column: Any = table.column("embedding").combine_chunks()  # FixedSizeListArray
    dim = int(column.type.list_size)
    return np.asarray(column.flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)


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
    embed_summary = api.embed([r.path for r in recs], run_config, factory=factory, base=config.root)
    windows, provenance = load_windows(recs, out)
    kept, removed = prune_windows(windows, config.prune, classifier)

    groups = ["all"] if config.group_by == "all" else sorted(set(kept.folder.tolist()))
    paths = {r.rel: r.path for r in recs}
    settings = {
        "subset": {**asdict(config.subset), "report": asdict(subset_report)},
        "prune": {**config.prune.as_dict(), "removed": removed},
        "cluster": config.cluster.as_dict(),
        "group_by": config.group_by,
        "embedding": provenance,
        "montage_cap": config.montage_cap,
        "spectrogram": asdict(config.style),
    }

    def read_span(rel: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        return read_segment(paths[rel], start_s, end_s)

    results = []
    for name in groups:
        part = kept if name == "all" else kept.take(kept.folder == name)
        results.append(cluster_group(name, part, out / name, settings, read_span, config))
    members = link_groups(out, groups, config.link)
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
                "sound_types": len({m.type_id for m in members}),
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
        len({m.type_id for m in members}),
    )


def cluster_group(
    name: str,
    w: Windows,
    folder_dir: Path,
    settings: dict[str, Any],
    read_span: SpanReader,
    config: DiscoverConfig,
) -> GroupResult:
    """Cluster one group's windows and write its review outputs into ``folder_dir``.

    ``read_span(rel, start_s, end_s)`` reads a span of a recording (by its relative path)
    for the montage tiles and audio snippets: from a local file in ``discover``, by
    ranged reads from the object store in the clustering service (no whole downloads).
    """
    key = stable_hash(
        {
            "settings": settings,
            "windows": sorted(zip(w.rel.tolist(), w.start.tolist(), strict=True)),
        }
    )
    key_file = folder_dir / ".discover_key.json"
    outputs = (folder_dir / CLUSTERS_FILE, folder_dir / PROTOTYPES_FILE)
    if not config.force and key_file.is_file() and all(p.is_file() for p in outputs):
        try:
            previous = json.loads(key_file.read_text())
        except ValueError:
            previous = {}  # unreadable (an older format, a torn write): recompute
        if previous.get("key") == key:
            log.info("group unchanged, kept as is", extra=fields(group=name))
            return GroupResult(**{**previous["result"], "skipped": True})

    result = cluster(w.embedding, config.cluster, w.rel, w.level)
    _clear_generated(folder_dir, name)
    prototypes(name, w.embedding, result.labels, result.background).save(
        folder_dir / PROTOTYPES_FILE
    )
    rows = [
        WindowRow(
            str(w.folder[i]),
            str(w.file[i]),
            float(w.start[i]),
            float(w.end[i]),
            int(result.labels[i]),
            float(result.probabilities[i]),
            float(result.map_xy[i, 0]),
            float(result.map_xy[i, 1]),
            str(w.top_label[i]),
            float(w.top_score[i]),
        )
        for i in range(len(w))
    ]
    write_clusters(folder_dir / CLUSTERS_FILE, rows)
    _keep_labelled_sheet(folder_dir / REVIEW_FILE)
    write_review(folder_dir / REVIEW_FILE, name, rows)
    write_times(folder_dir, name, rows)
    render_map(folder_dir / "map.png", f"{name}: {len(rows)} windows", result.map_xy, result.labels)

    rel_of = {(str(w.folder[i]), str(w.file[i])): str(w.rel[i]) for i in range(len(w))}

    def read(row: WindowRow) -> tuple[np.ndarray, int]:
        return read_span(rel_of[(row.folder, row.file)], row.start_s, row.end_s)

    sections = []
    for k in sorted({r.cluster for r in rows}):
        members = [r for r in rows if r.cluster == k]
        tiles = pick_members(members, config.montage_cap)
        montage = f"montages/cluster_{k}.png"
        kind = "noise (-1)" if k < 0 else f"cluster {k}"
        if result.background and k == BACKGROUND_CLUSTER:
            kind = "background (0)"
        title = f"{name} - {kind}: {len(members)} windows"
        render_montage(folder_dir / montage, title, tiles, read, config.style)
        clips = []
        n_audio = len(tiles) if config.audio_per_cluster is None else config.audio_per_cluster
        for i, row in enumerate(tiles[:n_audio]):
            src = f"audio/cluster_{k}_{i:02d}.ogg"
            try:
                samples, rate = read(row)
                if rate > SNIPPET_MAX_RATE:  # Vorbis tops out below ultrasonic rates
                    samples, rate = soxr.resample(samples, rate, SNIPPET_MAX_RATE), SNIPPET_MAX_RATE
                (folder_dir / "audio").mkdir(parents=True, exist_ok=True)
                sf.write(
                    folder_dir / src,
                    samples,
                    rate,
                    format=SNIPPET_FORMAT[0],
                    subtype=SNIPPET_FORMAT[1],
                )
            except Exception as exc:  # a missing snippet must not sink the page
                log.warning("snippet failed", extra=fields(file=row.file, error=str(exc)))
                continue
            clips.append(ClipLink(src, f"{Path(row.file).stem} @{row.start_s:g}s"))
        tops = "; ".join(f"{n} ({c})" for n, c in top_labels(members))
        background = result.background and k == BACKGROUND_CLUSTER
        sections.append(ClusterSection(k, len(members), tops, montage, clips, background))
    n_clusters = len({r.cluster for r in rows if r.cluster >= 0})
    write_group_page(
        folder_dir / "index.html",
        f"{name}: {n_clusters} clusters",
        f"{len(rows)} windows; {config.cluster.method} clustering, "
        f"min cluster size {result.min_cluster_size}",
        "map.png",
        sections,
    )
    done = GroupResult(
        name,
        len(rows),
        n_clusters,
        sum(r.cluster < 0 for r in rows),
        pca_used=result.pca_used,
        min_cluster_size=result.min_cluster_size,
    )
    atomic_write_text(key_file, json.dumps({"key": key, "result": asdict(done)}))
    return done


def _keep_labelled_sheet(path: Path) -> None:
    """Clustering again renumbers the clusters, so labels cannot follow them: a sheet
    with labels is kept beside the new one (review.<UTC time>.csv), never overwritten."""
    if not path.is_file():
        return
    try:
        labelled = any(e.label for e in read_review(path))
    except (BdiscError, UnicodeDecodeError):
        labelled = True  # unreadable as a sheet: keep it, whatever it holds
    if labelled:
        backup = path.with_name(f"review.{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.csv")
        shutil.copy2(path, backup)
        log.warning(
            "labelled review sheet kept: the deployment is clustered again",
            extra=fields(sheet=str(backup)),
        )


def _clear_generated(folder_dir: Path, name: str) -> None:
    """Remove what an earlier run of this group wrote, so no stale cluster survives."""
    for sub in ("montages", "audio"):
        for f in (folder_dir / sub).glob("cluster_*"):
            f.unlink()
    for f in folder_dir.glob(f"{name}_Cluster*_times.txt"):
        f.unlink()
