"""The tables a discovery run writes and a reviewer edits.

``clusters.csv``   one row per kept window (the full record of the run), with its cluster's
                   sound type (``type``, blank for noise)
``review.csv``     one row per cluster: Folder, Cluster, Label (to fill in), Type (the
                   project-wide sound type), SuggestedLabel (what linked clusters were
                   named), Size, TopLabels, MeanTopConfidence
``<folder>_Cluster<k>_times.txt``  birdnet-discovery's per-cluster lists
                   (tab-separated Wavfile, Start time, Cluster)
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bdisc.errors import ConfigError, NotFound
from bdisc.fsutil import atomic_write_text
from bdisc.model.labels import Label

CLUSTERS_FILE = "clusters.csv"
REVIEW_FILE = "review.csv"
CLUSTER_COLUMNS = [
    "folder",
    "file",
    "start_s",
    "end_s",
    "cluster",
    "probability",
    "umap_x",
    "umap_y",
    "top_label",
    "top_confidence",
    "type",
]
REVIEW_COLUMNS = [
    "Folder",
    "Cluster",
    "Label",
    "Type",
    "SuggestedLabel",
    "Size",
    "TopLabels",
    "MeanTopConfidence",
]


@dataclass(frozen=True)
class WindowRow:
    folder: str
    file: str
    start_s: float
    end_s: float
    cluster: int
    probability: float
    umap_x: float
    umap_y: float
    top_label: str
    top_confidence: float
    sound_type: int | None = None


def _csv(rows: Iterable[Sequence[object]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_clusters(path: Path, rows: Sequence[WindowRow]) -> None:
    body = [
        [
            r.folder,
            r.file,
            f"{r.start_s:g}",
            f"{r.end_s:g}",
            r.cluster,
            f"{r.probability:.4f}",
            f"{r.umap_x:.4f}",
            f"{r.umap_y:.4f}",
            r.top_label,
            f"{r.top_confidence:.4f}",
            "" if r.sound_type is None else r.sound_type,
        ]
        for r in rows
    ]
    atomic_write_text(path, _csv([CLUSTER_COLUMNS, *body]))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def sheet_cell(text: str) -> str:
    """A person's text as a cell of a sheet people open in spreadsheets: one starting
    like a formula (=, +, -, @) is quoted ('=...), so it is shown, not run."""
    return "'" + text if text.startswith(FORMULA_START) else text


def from_sheet_cell(text: str) -> str:
    """The text a ``sheet_cell`` holds."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def recording_path(folder: str, file: str) -> str:
    """A window's recording as labels and the review app name it (below the root)."""
    return file if folder in ("", "all") else f"{folder}/{file}"


def read_clusters(path: Path) -> list[WindowRow]:
    """The rows of ``path``; ConfigError naming it if it is not a clusters table."""
    if not path.is_file():
        raise NotFound(f"no clusters table: {path}", path=str(path))
    try:
        return parse_clusters(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text", path=str(path)) from exc
    except (ValueError, KeyError, TypeError, csv.Error) as exc:
        what = f"no column {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{path}: not a clusters table ({what})", path=str(path)) from exc


def parse_clusters(text: str) -> list[WindowRow]:
    """The rows of a clusters.csv's text."""
    return [
        WindowRow(
            r["folder"],
            r["file"],
            float(r["start_s"]),
            float(r["end_s"]),
            int(r["cluster"]),
            float(r["probability"]),
            float(r["umap_x"]),
            float(r["umap_y"]),
            r["top_label"],
            float(r["top_confidence"]),
            int(r["type"]) if r.get("type") else None,
        )
        for r in csv.DictReader(io.StringIO(text))
    ]


def top_labels(rows: Sequence[WindowRow], n: int = 3) -> list[tuple[str, int]]:
    counts = Counter(Label.parse(r.top_label).common for r in rows)
    return counts.most_common(n)


def write_review(path: Path, folder: str, rows: Sequence[WindowRow]) -> None:
    body = []
    for k in sorted({r.cluster for r in rows}):
        members = [r for r in rows if r.cluster == k]
        tops = "; ".join(f"{name} ({count})" for name, count in top_labels(members))
        mean = sum(r.top_confidence for r in members) / len(members)
        body.append([folder, k, "", "", "", len(members), tops, f"{mean:.3f}"])
    atomic_write_text(path, _csv([REVIEW_COLUMNS, *body]))


def annotate_types(
    folder_dir: Path,
    folder: str,
    types: Mapping[tuple[str, int], int],
    suggested: Mapping[tuple[str, int], str],
) -> None:
    """Write the sound types and suggested labels (keyed by group name and cluster) into
    a group's clusters.csv and review.csv, keeping everything a reviewer wrote: labels,
    added columns, the column names they used, a byte-order mark. A sheet that cannot be
    read as one raises ConfigError and is left as it is."""
    path = folder_dir / REVIEW_FILE
    if path.is_file():
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8 CSV") from exc
        reader = csv.DictReader(io.StringIO(text, newline=""))
        names = {c.strip().casefold(): c for c in reader.fieldnames or []}
        cluster_col = names.get("cluster") or names.get("cluster #")
        if cluster_col is None:
            raise ConfigError(f"{path}: no Cluster column; sound types not written")
        type_col = names.get("type", "Type")
        suggested_col = names.get("suggestedlabel", "SuggestedLabel")
        columns = list(reader.fieldnames or [])
        columns += [c for c in (type_col, suggested_col) if c not in columns]
        sheet = list(reader)
        for row in sheet:
            try:
                key = (folder, int(float(row[cluster_col] or "")))
            except ValueError:
                continue  # a note or total row a reviewer added: kept as it is
            row[type_col] = str(types.get(key, ""))
            row[suggested_col] = sheet_cell(suggested.get(key, ""))
        buf = io.StringIO()
        if raw.startswith(b"\xef\xbb\xbf"):
            buf.write("\ufeff")
        writer = csv.DictWriter(buf, columns, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(sheet)
        atomic_write_text(path, buf.getvalue())
    rows = read_clusters(folder_dir / CLUSTERS_FILE)
    write_clusters(
        folder_dir / CLUSTERS_FILE,
        [replace(r, sound_type=types.get((folder, r.cluster))) for r in rows],
    )


def write_times(folder_dir: Path, folder: str, rows: Sequence[WindowRow]) -> list[Path]:
    """birdnet-discovery's ``<folder>_Cluster<k>_times.txt``, one per cluster."""
    written = []
    for k in sorted({r.cluster for r in rows}):
        body = [[r.file, f"{r.start_s:g}", k] for r in rows if r.cluster == k]
        path = folder_dir / f"{folder}_Cluster{k}_times.txt"
        atomic_write_text(path, _csv([["Wavfile", "Start time", "Cluster"], *body], "\t"))
        written.append(path)
    return written


@dataclass(frozen=True)
class ReviewEntry:
    folder: str
    cluster: int
    label: str  # "" = not labelled: skipped by export
    suggested: str = ""  # what linked clusters were named (export --accept-suggestions)


def read_review(path: Path) -> list[ReviewEntry]:
    """A reviewer's sheet: Folder, Cluster (or "Cluster #", as the paper's template), Label."""
    if not path.is_file():
        raise NotFound(f"review sheet not found: {path}", path=str(path))
    try:
        return _review_entries(path)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8 CSV", path=str(path)) from exc
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a CSV sheet ({exc})", path=str(path)) from exc


def _review_entries(path: Path) -> list[ReviewEntry]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().casefold(): c for c in reader.fieldnames or []}
        cluster_col = columns.get("cluster") or columns.get("cluster #")
        folder_col, label_col = columns.get("folder"), columns.get("label")
        suggested_col = columns.get("suggestedlabel")
        if not (cluster_col and folder_col and label_col):
            raise ConfigError(
                f"{path}: a review sheet needs columns Folder, Cluster (or Cluster #) and "
                f"Label; found {', '.join(reader.fieldnames or [])}"
            )
        entries = []
        for line, row in enumerate(reader, start=2):
            try:
                cluster = int(float(row[cluster_col]))
            except (TypeError, ValueError, OverflowError) as exc:
                raise ConfigError(
                    f"{path}:{line}: cluster {row[cluster_col]!r} is not a number"
                ) from exc
            suggested = (row[suggested_col] or "").strip() if suggested_col else ""
            label = from_sheet_cell((row[label_col] or "").strip())
            entries.append(
                ReviewEntry(
                    (row[folder_col] or "").strip(), cluster, label, from_sheet_cell(suggested)
                )
            )
    return entries
