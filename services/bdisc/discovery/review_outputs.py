"""One group's (deployment's) windows -> clusters and everything a reviewer opens:
clusters.csv, review.csv, times files, the map, montages, audio snippets, cluster
prototypes and the group's page. The same function serves ``bdisc discover`` (spans read
from local files) and the clustering service (ranged reads from the object store).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from bdisc.discovery.background import BACKGROUND_CLUSTER
from bdisc.discovery.clustering import cluster
from bdisc.discovery.job_spec import GroupOptions
from bdisc.discovery.linking import PROTOTYPES_FILE, prototypes
from bdisc.discovery.prune import PruneRules
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
from bdisc.discovery.windows import Windows
from bdisc.errors import BdiscError, InternalError
from bdisc.fsutil import atomic_write_text
from bdisc.logs import fields
from bdisc.params import stable_hash
from bdisc.render.montage import Span, SpanReader, montage_png, render_map
from bdisc.render.page import ClipLink, ClusterSection, write_group_page

log = logging.getLogger(__name__)

SNIPPET_FORMAT = ("OGG", "VORBIS")
SNIPPET_MAX_RATE = 48_000


@dataclass
class GroupResult:
    name: str
    windows: int
    clusters: int
    noise: int
    skipped: bool = False
    pca_used: int = 0
    min_cluster_size: int = 0


def group_settings(
    options: GroupOptions,
    prune: PruneRules,
    removed: dict[str, int],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """The parameters a group's outputs depend on: recorded in ``discovery.json`` and
    part of the group's cache key (a change clusters it again)."""
    settings = {
        "prune": {**prune.as_dict(), "removed": removed},
        "cluster": options.cluster.as_dict(),
        "embedding": provenance,
        "montage_cap": options.montage_cap,
        "spectrogram": asdict(options.style),
    }
    if options.audio_per_cluster is not None:  # (absent by default: earlier keys still hold)
        settings["audio_per_cluster"] = options.audio_per_cluster
    return settings


def cluster_group(
    name: str,
    w: Windows,
    folder_dir: Path,
    settings: dict[str, Any],
    read_span: SpanReader,
    options: GroupOptions,
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
    if not options.force and key_file.is_file() and all(p.is_file() for p in outputs):
        try:
            previous = json.loads(key_file.read_text())
        except ValueError:
            previous = {}  # unreadable (an older format, a torn write): recompute
        if previous.get("key") == key:
            log.info("group unchanged, kept as is", extra=fields(group=name))
            return GroupResult(**{**previous["result"], "skipped": True})

    result = cluster(w.embedding, options.cluster, w.rel, w.level, (w.top_label, w.top_score))
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

    def span(row: WindowRow) -> Span:
        return Span(rel_of[(row.folder, row.file)], row.start_s, row.end_s)

    sections = []
    for k in sorted({r.cluster for r in rows}):
        members = [r for r in rows if r.cluster == k]
        tiles = pick_members(members, options.montage_cap)
        montage = f"montages/cluster_{k}.png"
        background = result.background and k == BACKGROUND_CLUSTER
        kind = "noise (-1)" if k < 0 else f"cluster {k}"
        if background:
            kind = "background (0)"
        title = f"{name} - {kind}: {len(members)} windows"
        png = montage_png(title, [span(t) for t in tiles], read_span, options.style)
        (folder_dir / "montages").mkdir(parents=True, exist_ok=True)
        (folder_dir / montage).write_bytes(png.data)
        clips = []
        n_audio = len(tiles) if options.audio_per_cluster is None else options.audio_per_cluster
        for i, row in enumerate(tiles[:n_audio]):
            src = f"audio/cluster_{k}_{i:02d}.ogg"
            try:
                where = span(row)
                samples, rate = read_span(where.source, where.start_s, where.end_s)
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
            except InternalError:  # the platform is misconfigured (its store refused)
                raise
            except Exception as exc:  # a missing snippet must not sink the page
                log.warning("snippet failed", extra=fields(file=row.file, error=str(exc)))
                continue
            clips.append(ClipLink(src, f"{Path(row.file).stem} @{row.start_s:g}s"))
        tops = "; ".join(f"{n} ({c})" for n, c in top_labels(members))
        sections.append(ClusterSection(k, len(members), tops, montage, clips, background))
    n_clusters = len({r.cluster for r in rows if r.cluster >= 0})
    write_group_page(
        folder_dir / "index.html",
        f"{name}: {n_clusters} clusters",
        f"{len(rows)} windows; {options.cluster.method} clustering, "
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


def pick_members(rows: Sequence[WindowRow], cap: int) -> list[WindowRow]:
    """Half the tiles: the most typical members (highest membership, taking recordings in
    turn within each 0.05 band of membership); the other half spread evenly over the rest
    in recording order, to show the cluster's range."""
    ranked = sorted(rows, key=lambda r: (-r.probability, r.file, r.start_s))
    turn: dict[str, int] = {}
    order = []
    for r in ranked:
        turn[r.file] = turn.get(r.file, -1) + 1
        order.append((-round(r.probability * 20), turn[r.file], r.file, r.start_s, r))
    by_prob = [item[-1] for item in sorted(order, key=lambda t: t[:4])]
    if len(by_prob) <= cap:
        return by_prob
    head = by_prob[: cap // 2]
    rest = sorted(by_prob[cap // 2 :], key=lambda r: (r.file, r.start_s))
    picks = np.linspace(0, len(rest) - 1, cap - len(head)).round().astype(int)
    return head + [rest[i] for i in picks]
