"""One recording's stored windows (an embeddings file), in time order, as arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bdisc.errors import IncompatibleArtifact
from bdisc.outputs.embeddings import SUFFIX, file_metadata

EMBEDDINGS_FOLDER = "embeddings"


@dataclass(frozen=True)
class StoredWindows:
    recording: str  # relative to the input root
    source: str  # where the recording was read from
    duration_s: float
    provenance: dict[str, Any]  # the file's window provenance
    start_s: np.ndarray  # float64 (n,)
    end_s: np.ndarray  # float64 (n,)
    vectors: np.ndarray  # float32 (n, dim)
    top_label: np.ndarray  # object (n,): best label ("" when none)
    top_score: np.ndarray  # float32 (n,)
    rms_dbfs: np.ndarray  # float32 (n,)

    def __len__(self) -> int:
        return int(self.start_s.shape[0])


def embedding_files(folder: Path) -> list[Path]:
    """Every embeddings file under ``folder``, in a stable order."""
    return sorted(folder.rglob(f"*{SUFFIX}"))


def read_windows(path: Path) -> StoredWindows:
    """A recording's windows; IncompatibleArtifact if the file is not a bdisc embeddings
    file (or is damaged)."""
    try:
        meta = file_metadata(path)
        provenance = dict(meta["window"])
        table = pq.read_table(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IncompatibleArtifact(f"unreadable embeddings file {path}: {exc}") from exc
    column: Any = table.column("embedding").combine_chunks()
    dim = int(column.type.list_size)
    vectors = np.asarray(column.flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)
    starts = table.column("start_s").to_numpy()
    order = np.argsort(starts, kind="stable")
    tops = table.column("top_labels").to_pylist()
    scores = table.column("top_scores").to_pylist()
    recording = meta.get("recording", {})
    rel = recording.get("path") or (table.column("recording")[0].as_py() if len(table) else "")
    ends = table.column("end_s").to_numpy()
    return StoredWindows(
        recording=str(rel),
        source=str(recording.get("source", "")),
        duration_s=float(recording.get("duration_s") or (ends.max() if len(ends) else 0.0)),
        provenance=provenance,
        start_s=starts[order],
        end_s=ends[order],
        vectors=vectors[order],
        top_label=np.array([t[0] if t else "" for t in tops], dtype=object)[order],
        top_score=np.array([s[0] if s else 0.0 for s in scores], dtype=np.float32)[order],
        rms_dbfs=table.column("rms_dbfs").to_numpy().astype(np.float32)[order],
    )
