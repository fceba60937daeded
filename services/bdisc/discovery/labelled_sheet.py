"""The generated review sheet (``review.csv``: Folder, Cluster, Label, Size, TopLabels,
...) as a view of the label store: its Label column is what the store holds for each
cluster, rewritten whenever labels change, so readers of the sheet (the link step's
suggestions, downloads, the paper's format) see the reviewers' labels."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from bdisc.discovery.sheets import sheet_cell
from bdisc.errors import ConfigError
from bdisc.ports.label_store import LabelStore

# Where a results folder keeps its labels (``bdisc review``; ``bdisc discover`` carries
# them when it clusters again), and the job they belong to there.
LOCAL_LABELS = ".bdisc/review.sqlite"
LOCAL_JOB = "local"


def cluster_labels(store: LabelStore, job_id: str, folder: str) -> dict[int, str]:
    return {
        r.target.number: r.label for r in store.labels(job_id, folder) if r.target.kind == "cluster"
    }


def sheet_rows(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if rows and not {"Folder", "Cluster", "Label"} <= set(rows[0]):
        raise ConfigError("a review sheet needs columns Folder, Cluster and Label")
    return rows


def with_labels(text: str, labels: Mapping[int, str]) -> str:
    """The sheet with its Label column set from ``labels`` (other columns kept)."""
    rows = sheet_rows(text)
    if not rows:
        return text
    for row in rows:
        try:
            row["Label"] = sheet_cell(labels.get(int(float(row["Cluster"])), ""))
        except ValueError:
            continue  # a note row a reviewer added
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def local_labels_url(results: Path) -> str:
    """The SQLite URL of a results folder's labels."""
    return f"sqlite:///{results / LOCAL_LABELS}"
