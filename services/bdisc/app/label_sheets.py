"""A discovery job's labels (as the label store keeps them) as the sheets export and
training read: a label per (folder, cluster), where a labelled sound type labels its
clusters that have no label of their own, and per-window overrides (folder, file,
start_s, label) that win over their cluster's label."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bdisc.app.keys import group_of
from bdisc.app.messages import SheetLabel
from bdisc.discovery.linking import read_sound_types
from bdisc.ports.label_store import Target

OVERRIDE_COLUMNS = ["folder", "file", "start_s", "label"]


@dataclass(frozen=True)
class JobLabels:
    clusters: dict[tuple[str, int], str]  # (folder, cluster) -> label ("" unlabelled)
    windows: list[dict[str, object]]  # per-window labels, as OVERRIDE_COLUMNS

    def of_folder(self, folder: str) -> dict[int, str]:
        return {c: label for (f, c), label in self.clusters.items() if f == folder and label}


def job_labels(
    labels: Sequence[SheetLabel], folders: Iterable[str], sound_types: Path | None
) -> JobLabels:
    """Every folder gets a row (its noise, unlabelled), so that export plans every
    deployment, also those with window labels only."""
    clusters: dict[tuple[str, int], str] = {(f, -1): "" for f in folders}
    by_type: dict[int, str] = {}
    windows: list[dict[str, object]] = []
    for entry in labels:
        target = Target.from_key(entry.folder, entry.target)
        if target.kind == "cluster":
            clusters[(target.folder, target.number)] = entry.label
        elif target.kind == "type":
            by_type[target.number] = entry.label
        else:
            folder, name = _deployment_of(target.folder, target.recording)
            windows.append(
                {
                    "folder": folder,
                    "file": name,
                    "start_s": target.start_s,
                    "label": entry.label,
                }
            )
    if by_type and sound_types is not None and sound_types.is_file():
        for (folder, cluster), type_id in read_sound_types(sound_types).items():
            if type_id in by_type and not clusters.get((folder, cluster)):
                clusters[(folder, cluster)] = by_type[type_id]
    return JobLabels(clusters, windows)


def _deployment_of(folder: str, recording: str) -> tuple[str, str]:
    """(deployment, file) of a labelled window: a review group (``search-<job>``) labels
    windows of its deployments, which their paths name."""
    if recording.startswith(folder + "/"):
        return folder, recording[len(folder) + 1 :]
    return group_of(recording), recording.split("/", 1)[-1]


def write_csv(path: Path, columns: list[str], rows: list[dict[str, object]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")


def write_review_table(path: Path, labels: JobLabels) -> None:
    """One Folder/Cluster/Label sheet of every folder."""
    write_csv(
        path,
        ["Folder", "Cluster", "Label"],
        [{"Folder": f, "Cluster": c, "Label": lab} for (f, c), lab in labels.clusters.items()],
    )


def write_overrides(path: Path, labels: JobLabels) -> None:
    write_csv(path, OVERRIDE_COLUMNS, labels.windows)
