"""Labelled windows -> a training set: ``TRAINSET/<Label>/<folder>__<file stem>__<start ms>.wav``.

Labels change as review goes on. Export is idempotent and converges: each run computes
the clips the current sheets ask for, keeps the ones already in place, moves the ones
whose label changed, cuts the new ones, and deletes the clips of earlier exports that are
no longer wanted (only files listed in its own ``manifest.csv``: nothing else in the
folder is touched). The manifest lists every clip with source, times, cluster and label.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from bdisc.audio.segments import read_segment
from bdisc.discovery.linking import (
    BACKGROUND_TYPE,
    SOUND_TYPES_FILE,
    given_labels,
    read_sound_types,
    suggestions,
)
from bdisc.discovery.sheets import (
    CLUSTERS_FILE,
    REVIEW_FILE,
    ReviewEntry,
    read_clusters,
    read_review,
)
from bdisc.errors import ConfigError, NotFound, describe
from bdisc.fsutil import atomic_write_text, commit, temp_path

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = [
    "clip",
    "label",
    "folder",
    "file",
    "source",
    "start_s",
    "end_s",
    "cluster",
    "pad_s",
    "sample_rate",
]


@dataclass(frozen=True)
class ExportConfig:
    review: Path
    results: Path  # the discover output folder
    out: Path
    overrides: Path | None = None
    pad_s: float = 0.0
    sample_rate: int | None = None  # None: the recording's own rate
    # Export the whole project: every labelled cluster of every deployment, and every
    # unlabelled cluster under the label its sound type was given (SuggestedLabel).
    accept_suggestions: bool = False

    def __post_init__(self) -> None:
        if self.pad_s < 0:
            raise ConfigError(f"padding must be >= 0, got {self.pad_s}")


@dataclass(frozen=True)
class Clip:
    clip: str  # path inside the training set, posix
    label: str
    folder: str
    file: str
    source: str
    start_s: float
    end_s: float
    cluster: int
    pad_s: float
    sample_rate: int | None

    def row(self) -> list[str]:
        return [
            self.clip,
            self.label,
            self.folder,
            self.file,
            self.source,
            f"{self.start_s:g}",
            f"{self.end_s:g}",
            str(self.cluster),
            f"{self.pad_s:g}",
            "native" if self.sample_rate is None else str(self.sample_rate),
        ]

    def cut_key(self) -> tuple[str, float, float, float, int | None]:
        """What the audio of a clip depends on; a clip with the same key needs no re-cut."""
        return (self.source, self.start_s, self.end_s, self.pad_s, self.sample_rate)


@dataclass
class ExportReport:
    clips: int = 0
    cut: int = 0
    moved: int = 0
    kept: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


# Characters no label may keep: they end lines and fields of the files labels go into.
CONTROL_CHARACTERS = r"\x00-\x1f"  # a regular-expression character range


def safe_label(label: str) -> str:
    """A label as a folder name: no path separators, no leading dots."""
    cleaned = re.sub(rf"[\\/:*?\"<>|{CONTROL_CHARACTERS}]+", "_", label).strip().lstrip(".")
    if not cleaned:
        raise ConfigError(f"label {label!r} cannot be used as a folder name")
    return cleaned


def _read_overrides(path: Path) -> dict[tuple[str, str, float], str]:
    if not path.is_file():
        raise NotFound(f"overrides sheet not found: {path}", path=str(path))
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        need = {"folder", "file", "start_s", "label"}
        if not need <= {c.strip() for c in reader.fieldnames or []}:
            raise ConfigError(f"{path}: overrides need columns folder, file, start_s, label")
        return {
            (r["folder"].strip(), r["file"].strip(), round(float(r["start_s"]), 3)): (
                r["label"] or ""
            ).strip()
            for r in reader
        }


def _sources(results: Path) -> dict[tuple[str, str], str]:
    """(folder, file) -> recording path, from the discovery's embedding metadata."""
    return recording_index(results, "source")


def recording_index(results: Path, value: str = "source") -> dict[tuple[str, str], str]:
    """(folder, file) -> the recording's ``value`` in the discovery's embedding metadata
    (``source``: where the recording is; ``path``: its name below the root, as the
    embeddings name it), in the keys ``plan`` looks its windows up by."""
    from bdisc.outputs.embeddings import SUFFIX, file_metadata

    sources: dict[tuple[str, str], str] = {}
    for meta_file in (results / "embeddings").rglob(f"*{SUFFIX}"):
        rec = file_metadata(meta_file)["recording"]
        parts = rec["path"].split("/", 1)
        key = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        sources[key] = rec[value]
        sources.setdefault(("*", rec["path"]), rec[value])
    return sources


def _project_labels(results: Path, entries: list[ReviewEntry]) -> dict[tuple[str, int], str]:
    """Every label of the project, and a label for every unlabelled cluster of a labelled
    sound type: this sheet's labels for its folders, the review sheets in ``results``
    for the others, the types of ``results/sound_types.csv`` (a sheet's own
    SuggestedLabel for a cluster without a type). Left out: ambiguous suggestions
    (``a | b``: a person must choose) and the background type, exported only where it
    is labelled (it holds most windows of every deployment)."""
    types = read_sound_types(results / SOUND_TYPES_FILE)
    mine = {e.folder for e in entries}
    others = [p.parent.name for p in sorted(results.glob(f"*/{REVIEW_FILE}"))]
    given = {k: v for k, v in given_labels(results, others).items() if k[0] not in mine}
    given.update({(e.folder, e.cluster): e.label for e in entries if e.label})
    offered = {
        (e.folder, e.cluster): e.suggested
        for e in entries
        if e.suggested and (e.folder, e.cluster) not in types
    }
    offered.update(
        {k: v for k, v in suggestions(types, given).items() if types[k] != BACKGROUND_TYPE}
    )
    accepted = {k: v for k, v in offered.items() if " | " not in v and k not in given}
    return {**given, **accepted}


def plan(config: ExportConfig, sources: dict[tuple[str, str], str] | None = None) -> list[Clip]:
    """The clips the current sheets ask for. ``sources`` maps (folder, file) to where the
    recording is (default: the paths in the discovery's embeddings metadata)."""
    entries = read_review(config.review)
    labels = {(e.folder, e.cluster): e.label for e in entries}
    if config.accept_suggestions:
        labels = _project_labels(config.results, entries)
    overrides = _read_overrides(config.overrides) if config.overrides else {}
    sources = _sources(config.results) if sources is None else sources
    clips: dict[str, Clip] = {}
    # Window labels (a Raven import, a lasso in bdisc review) reach the deployments they
    # name, when those were clustered on their own (not under --group-by all).
    labelled_windows = {
        folder for folder, _, _ in overrides if (config.results / folder / CLUSTERS_FILE).is_file()
    }
    groups = {e.folder for e in entries} | {folder for folder, _ in labels} | labelled_windows
    for group in sorted(groups):
        path = config.results / group / CLUSTERS_FILE
        if not path.is_file():
            raise NotFound(f"review sheet names folder {group!r} but {path} does not exist")
        for w in read_clusters(path):
            label = overrides.get(
                (w.folder, w.file, round(w.start_s, 3)), labels.get((group, w.cluster), "")
            )
            if not label:
                continue
            source = sources.get((w.folder, w.file)) or sources.get(("*", w.file))
            if source is None:
                raise NotFound(f"no recording known for {w.folder}/{w.file}")
            name = (
                f"{safe_label(label)}/{w.folder}__{Path(w.file).stem}__"
                f"{round(w.start_s * 1000)}.wav"
            )
            clips[name] = Clip(
                name,
                label,
                w.folder,
                w.file,
                source,
                w.start_s,
                w.end_s,
                w.cluster,
                config.pad_s,
                config.sample_rate,
            )
    return list(clips.values())


def read_manifest(text: str) -> list[Clip]:
    return [
        Clip(
            r["clip"],
            r["label"],
            r["folder"],
            r["file"],
            r["source"],
            float(r["start_s"]),
            float(r["end_s"]),
            int(r["cluster"]),
            float(r["pad_s"]),
            None if r["sample_rate"] == "native" else int(r["sample_rate"]),
        )
        for r in csv.DictReader(io.StringIO(text))
    ]


def manifest_text(clips: list[Clip]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(c.row() for c in sorted(clips, key=lambda c: c.clip))
    return buf.getvalue()


@dataclass
class Reconciled:
    """What it takes to turn the last export into the wanted one."""

    keep: list[Clip] = field(default_factory=list)
    move: list[tuple[str, Clip]] = field(default_factory=list)  # (old name, clip)
    cut: list[Clip] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)  # old names no longer wanted


def reconcile(
    wanted: list[Clip], previous: list[Clip], present: Callable[[str], bool]
) -> Reconciled:
    """Keep clips in place, move relabelled ones (same audio, new folder), cut the rest;
    ``present`` says whether a clip of the last export still exists."""
    old = {c.clip: c for c in previous if present(c.clip)}
    wanted_names = {c.clip for c in wanted}
    spare: dict[tuple[str, float, float, float, int | None], list[str]] = {}
    for c in old.values():
        if c.clip not in wanted_names:
            spare.setdefault(c.cut_key(), []).append(c.clip)
    result = Reconciled()
    for clip in wanted:
        same = old.get(clip.clip)
        if same and same.cut_key() == clip.cut_key():
            result.keep.append(clip)
        elif spare.get(clip.cut_key()):
            result.move.append((spare[clip.cut_key()].pop(0), clip))
        else:
            result.cut.append(clip)
    moved = {name for name, _ in result.move}
    result.remove = sorted(c.clip for c in previous if c.clip not in wanted_names | moved)
    return result


def cut_clip(clip: Clip, source: Path, dest: Path) -> None:
    """Cut one clip from a local copy of its recording into ``dest`` (16-bit WAV)."""
    _cut(replace(clip, source=str(source)), dest)


def _cut(clip: Clip, dest: Path) -> None:
    samples, rate = read_segment(
        Path(clip.source),
        max(0.0, clip.start_s - clip.pad_s),
        clip.end_s + clip.pad_s,
        clip.sample_rate,
    )
    pcm = np.clip(samples, -1.0, 1.0)
    tmp = temp_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(tmp, pcm, rate, subtype="PCM_16", format="WAV")
    commit(tmp, dest)


def export(config: ExportConfig) -> ExportReport:
    """Bring ``config.out`` in line with the current sheets (see the module's docstring)."""
    wanted = plan(config)
    manifest = config.out / MANIFEST
    previous = read_manifest(manifest.read_text(encoding="utf-8")) if manifest.is_file() else []
    todo = reconcile(wanted, previous, lambda name: (config.out / name).is_file())
    report = ExportReport(clips=len(wanted), kept=len(todo.keep))
    done = list(todo.keep)
    for old, clip in todo.move:
        dest = config.out / clip.clip
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(config.out / old, dest)
        report.moved += 1
        done.append(clip)
    for clip in todo.cut:
        try:
            _cut(clip, config.out / clip.clip)
            report.cut += 1
            done.append(clip)
        except Exception as exc:
            report.failed.append((clip.clip, ": ".join(describe(exc))))
    for name in todo.remove:
        stale = config.out / name
        if stale.is_file():
            stale.unlink()
            report.removed += 1
    for folder in sorted(
        {p.parent for p in config.out.rglob("*.wav")}
        | {config.out / Path(c.clip).parent for c in previous},
        reverse=True,
    ):
        if folder != config.out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    atomic_write_text(manifest, manifest_text(done))
    return report
