"""Clusters for a closer look in Raven or Audacity (the paper reviewed uncertain clusters
in Raven), and a reviewer's labels from such a table back into the label store.

Per group: ``raven/<group>_Cluster<k>.selections.txt`` (with its ``.list.txt``) holding the
cluster's windows with Folder, Cluster, Probability (membership), Type, Top Label and an
empty Annotation column for the reviewer, and ``audacity/<recording>.labels.txt``, a
label track per recording naming each window's cluster. Job-wide:
``raven_all_clusters.selections.txt`` with every window of every group.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bdisc.discovery.sheets import CLUSTERS_FILE, WindowRow, read_clusters, recording_path
from bdisc.errors import ConfigError
from bdisc.interop.path_match import TailIndex
from bdisc.interop.raven_tables import (
    Selection,
    read_raven_labels,
    write_audacity,
    write_raven,
)
from bdisc.logs import fields
from bdisc.ports.label_store import Change, LabelStore, Target

log = logging.getLogger(__name__)

RAVEN_DIR = "raven"
AUDACITY_DIR = "audacity"
JOB_TABLE = "raven_all_clusters.selections.txt"
IMPORT_AUTHOR = "raven-import"


def _selection(row: WindowRow, path: str) -> Selection:
    return Selection(
        path,
        row.start_s,
        row.end_s,
        {
            "Folder": row.folder,
            "Cluster": str(row.cluster),
            "Probability": f"{row.probability:.4f}",
            "Type": "" if row.sound_type is None else str(row.sound_type),
            "Top Label": row.top_label,
            "Annotation": "",
        },
    )


def _track_text(row: WindowRow) -> str:
    return "noise" if row.cluster < 0 else f"Cluster {row.cluster} p={row.probability:.2f}"


def write_group_tables(
    folder_dir: Path,
    group: str,
    rows: Sequence[WindowRow],
    paths: Mapping[tuple[str, str], str],
    durations: Mapping[str, float],
) -> int:
    """The group's per-cluster Raven tables and per-recording Audacity tracks (replacing
    an earlier run's); ``paths`` gives each (folder, file) its recording's path."""
    for sub in (RAVEN_DIR, AUDACITY_DIR):
        shutil.rmtree(folder_dir / sub, ignore_errors=True)
    usable = [r for r in rows if (r.folder, r.file) in paths]
    for k in sorted({r.cluster for r in usable}):
        members = [_selection(r, paths[(r.folder, r.file)]) for r in usable if r.cluster == k]
        (folder_dir / RAVEN_DIR).mkdir(parents=True, exist_ok=True)
        write_raven(
            folder_dir / RAVEN_DIR / f"{group}_Cluster{k}.selections.txt", members, durations
        )
    by_recording: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for r in usable:
        by_recording.setdefault((r.folder, r.file), []).append((r.start_s, r.end_s, _track_text(r)))
    for (folder, file), spans in by_recording.items():
        name = recording_path(folder, file) if group == "all" else file
        target = folder_dir / AUDACITY_DIR / f"{name}.labels.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_audacity(target, spans)
    return len(usable)


def write_job_table(
    out: Path,
    groups: Sequence[str],
    paths: Mapping[tuple[str, str], str],
    durations: Mapping[str, float],
) -> Path:
    """Every window of every group in one table, with its Folder and Cluster."""
    selections = [
        _selection(r, paths[(r.folder, r.file)])
        for g in groups
        if (out / g / CLUSTERS_FILE).is_file()
        for r in read_clusters(out / g / CLUSTERS_FILE)
        if (r.folder, r.file) in paths
    ]
    return write_raven(out / JOB_TABLE, selections, durations)


@dataclass(frozen=True)
class LabelImport:
    labelled: int  # windows given a label
    unmatched: int  # labelled rows that name no window of the results


def import_raven_labels(
    results: Path, tables: Sequence[Path], store: LabelStore, job_id: str
) -> LabelImport:
    """The Annotation/Label cells of Raven tables as window labels of ``results``: a row
    names its window by recording (the tail of its Begin Path) and offset. Rows without a
    label are left alone; one change per deployment sheet, recorded as an import."""
    windows = _window_index(results)
    changes: dict[str, dict[str, Change]] = {}
    unmatched = 0
    for table in tables:
        for span in read_raven_labels(table):
            if not span.label:
                continue
            hit = windows.find(span.path, span.start_s)
            if hit is None:
                unmatched += 1
                continue
            group, target = hit
            changes.setdefault(group, {})[target.key] = Change(target, span.label)
    for group, by_key in changes.items():
        store.write(job_id, group, list(by_key.values()), IMPORT_AUTHOR, "import", expected=None)
    labelled = sum(len(c) for c in changes.values())
    log.info("window labels imported", extra=fields(labelled=labelled, unmatched=unmatched))
    if unmatched and not labelled:
        raise ConfigError(
            f"none of the {unmatched} labelled rows names a window of {results} "
            "(matched by the end of Begin Path and File Offset)"
        )
    return LabelImport(labelled, unmatched)


@dataclass(frozen=True)
class _Windows:
    """Every window of a results folder, found by recording (any path ending with its
    path below the project) and start."""

    by_recording: dict[str, list[tuple[float, str, Target]]]
    finder: TailIndex[str]

    def find(self, path: str, start_s: float) -> tuple[str, Target] | None:
        recording = self.finder.find(path)
        for start, group, target in self.by_recording.get(recording or "", ()):
            if abs(start - start_s) < 0.01:
                return group, target
        return None


def _window_index(results: Path) -> _Windows:
    by_recording: dict[str, list[tuple[float, str, Target]]] = {}
    for clusters in sorted(results.glob(f"*/{CLUSTERS_FILE}")):
        group = clusters.parent.name
        for r in read_clusters(clusters):
            recording = recording_path(r.folder, r.file)
            target = Target.window(group, recording, r.start_s, r.end_s)
            by_recording.setdefault(recording, []).append((r.start_s, group, target))
    if not by_recording:
        raise ConfigError(f"{results} holds no clusters.csv: run bdisc discover first")
    return _Windows(by_recording, TailIndex(((rec,), rec) for rec in by_recording))
