"""What the review app shows, from a job's outputs and its labels: the same JSON for the
gateway (results in the object store) and ``bdisc review`` (results in a folder)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bdisc.discovery.sheets import WindowRow, recording_path
from bdisc.ports.label_store import LabelRecord

MAP_DECIMALS = 3


def map_points(rows: Sequence[WindowRow]) -> dict[str, Any]:
    """Every window of a deployment as columns (compact for 50,000 points): recording
    file and path (a review group's windows come from several deployments), start and
    end, cluster, membership and map position."""
    return {
        "file": [r.file for r in rows],
        "path": [recording_path(r.folder, r.file) for r in rows],
        "start_s": [round(r.start_s, 3) for r in rows],
        "end_s": [round(r.end_s, 3) for r in rows],
        "cluster": [r.cluster for r in rows],
        "probability": [round(r.probability, 3) for r in rows],
        "x": [round(r.umap_x, MAP_DECIMALS) for r in rows],
        "y": [round(r.umap_y, MAP_DECIMALS) for r in rows],
        "top_label": [r.top_label for r in rows],
    }


def cluster_members(rows: Sequence[WindowRow], cluster: int, limit: int) -> list[dict[str, Any]]:
    """A cluster's most typical members first (membership, then time), for its tiles."""
    members = sorted(
        (r for r in rows if r.cluster == cluster), key=lambda r: (-r.probability, r.file, r.start_s)
    )
    return [
        {
            "file": r.file,
            "path": recording_path(r.folder, r.file),
            "start_s": r.start_s,
            "end_s": r.end_s,
            "probability": round(r.probability, 3),
            "top_label": r.top_label,
        }
        for r in members[:limit]
    ]


def deployment_summary(
    folder: str, rows: Sequence[WindowRow], labels: Sequence[LabelRecord]
) -> dict[str, Any]:
    """Review progress of a deployment: clusters labelled of all (noise not counted)."""
    clusters = {r.cluster for r in rows if r.cluster >= 0}
    labelled = {
        r.target.number for r in labels if r.target.kind == "cluster" and r.target.number >= 0
    }
    windows_labelled = sum(1 for r in labels if r.target.kind == "window")
    return {
        "folder": folder,
        "windows": len(rows),
        "clusters": len(clusters),
        "labelled": len(clusters & labelled),
        "window_labels": windows_labelled,
    }


def label_names(labels: Sequence[LabelRecord]) -> list[str]:
    """The project's labels, most used first (for completion)."""
    counts: dict[str, int] = defaultdict(int)
    for r in labels:
        counts[r.label] += 1
    return sorted(counts, key=lambda name: (-counts[name], name.casefold()))
