"""Embeddings and top scores per window, in Parquet, with provenance in the file's metadata.

Schema (one row per window):
    recording   string                 path relative to the input root
    start_s     float64
    end_s       float64
    embedding   fixed_size_list<float32>[D]   D = 1024 for BirdNET V2.4
    top_labels  list<string>           best labels first (after any species filter)
    top_scores  list<float32>
    rms_dbfs    float32                audio level of the window (digital silence: -120)
The schema metadata key ``bdisc`` holds JSON: ``window`` (model, rate, window, overlap,
min length, band-pass: what makes embeddings comparable), ``scores`` (how top scores were
made), ``recording`` (source path, content hash, duration, native rate) and the bdisc version.
``read_embeddings`` refuses to mix files whose ``window`` provenance differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bdisc.errors import IncompatibleArtifact, NotFound
from bdisc.fsutil import commit, temp_path
from bdisc.model.labels import Label
from bdisc.outputs.names import output_stem

METADATA_KEY = b"bdisc"
SUFFIX = ".embeddings.parquet"
TEXT_SUFFIX = ".birdnet.embeddings.txt"


def embeddings_path(folder: Path, rel: str) -> Path:
    """Where a recording's embeddings file lives under ``folder`` (its path, mirrored;
    ``names.name_clashes`` finds recordings that would share it)."""
    return folder / (output_stem(rel).as_posix() + SUFFIX)


# Rows per Parquet row group: large enough for efficient reads, 8 MiB of embeddings.
ROW_GROUP_ROWS = 2048


def schema(dim: int, metadata: dict[str, Any]) -> pa.Schema:
    columns: list[pa.Field[Any]] = [
        pa.field("recording", pa.string(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("top_labels", pa.list_(pa.string()), nullable=False),
        pa.field("top_scores", pa.list_(pa.float32()), nullable=False),
        pa.field("rms_dbfs", pa.float32(), nullable=False),
    ]
    return pa.schema(
        columns, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()}
    )


class EmbeddingWriter:
    """Streams rows into ``path`` (via a temporary file; ``close`` moves it into place)."""

    def __init__(
        self,
        path: Path,
        recording: str,
        dim: int,
        labels: Sequence[Label],
        metadata: dict[str, Any],
        text_path: Path | None = None,
    ) -> None:
        self.path, self.recording, self.dim, self.labels = path, recording, dim, labels
        self.schema = schema(dim, metadata)
        self.tmp = temp_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        self.text_path = text_path
        self._text_tmp = temp_path(text_path) if text_path else None
        self._text = self._text_tmp.open("w", encoding="utf-8") if self._text_tmp else None
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(
        self,
        start_s: np.ndarray,
        end_s: np.ndarray,
        embeddings: np.ndarray,
        top_idx: np.ndarray,
        top_scores: np.ndarray,
        rms_dbfs: np.ndarray,
    ) -> None:
        n = len(start_s)
        flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).ravel())
        k = top_idx.shape[1]
        offsets: Any = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32), pa.int32())
        names = pa.array([self.labels[i].key for i in top_idx.ravel()], pa.string())
        table = pa.Table.from_arrays(
            [
                pa.array([self.recording] * n, pa.string()),
                pa.array(start_s, pa.float64()),
                pa.array(end_s, pa.float64()),
                pa.FixedSizeListArray.from_arrays(flat, self.dim),
                pa.ListArray.from_arrays(offsets, names),
                pa.ListArray.from_arrays(offsets, pa.array(top_scores.ravel(), pa.float32())),
                pa.array(rms_dbfs, pa.float32()),
            ],
            schema=self.schema,
        )
        self._append(table, start_s, end_s, embeddings)

    def add_table(self, table: pa.Table) -> None:
        """Rows of another embeddings file of this recording (a part of it), as they are."""
        table = table.replace_schema_metadata(None).cast(self.schema)
        column: Any = table.column("embedding").combine_chunks()
        vectors = np.asarray(column.flatten().to_numpy()).reshape(-1, self.dim)
        starts, ends = table.column("start_s").to_numpy(), table.column("end_s").to_numpy()
        self._append(table, starts, ends, vectors)

    def _append(
        self, table: pa.Table, start_s: np.ndarray, end_s: np.ndarray, embeddings: np.ndarray
    ) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()
        if self._text is not None:
            for s, e, vec in zip(start_s, end_s, embeddings, strict=True):
                values = ",".join(f"{v:.6g}" for v in vec)
                self._text.write(f"{round(float(s), 4)}\t{round(float(e), 4)}\t{values}\n")
        self.rows += table.num_rows

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0

    def close(self) -> list[Path]:
        self._flush()
        self._writer.close()
        commit(self.tmp, self.path)
        written = [self.path]
        if self._text is not None and self._text_tmp and self.text_path:
            self._text.close()
            commit(self._text_tmp, self.text_path)
            written.append(self.text_path)
        return written

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)
        if self._text is not None and self._text_tmp:
            self._text.close()
            self._text_tmp.unlink(missing_ok=True)


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """float32 (N, D) from an embeddings table's fixed-size list column."""
    column: Any = table.column("embedding").combine_chunks()  # FixedSizeListArray
    dim = int(column.type.list_size)
    return np.asarray(column.flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)


def file_metadata(path: Path) -> dict[str, Any]:
    return metadata_of(pq.read_schema(path), path)


def metadata_of(schema: pa.Schema, path: Path) -> dict[str, Any]:
    """bdisc's provenance in an embeddings file's schema (``path`` names it in errors)."""
    raw = schema.metadata or {}
    if METADATA_KEY not in raw:
        raise IncompatibleArtifact(f"{path} is not a bdisc embeddings file", path=str(path))
    value: dict[str, Any] = json.loads(raw[METADATA_KEY])
    return value


def find_embedding_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.rglob(f"*{SUFFIX}"))
        elif p.is_file():
            files.append(p)
        else:
            raise NotFound(f"no such embeddings file or folder: {p}", path=str(p))
    return files


def read_embeddings(paths: Iterable[Path]) -> tuple[pa.Table, dict[str, Any]]:
    """All rows of the given files/folders, and their shared window provenance.

    Raises IncompatibleArtifact if the files were made with different models or windows.
    """
    files = find_embedding_files(paths)
    if not files:
        raise NotFound("no embeddings files found")
    reference: dict[str, Any] | None = None
    tables = []
    for f in files:
        window = file_metadata(f)["window"]
        if reference is None:
            reference = window
        elif window != reference:
            diff = sorted(
                k for k in set(window) | set(reference) if window.get(k) != reference.get(k)
            )
            raise IncompatibleArtifact(
                f"{f} was made with different settings ({', '.join(diff)}) than {files[0]}",
                path=str(f),
                differs=diff,
            )
        tables.append(pq.read_table(f).replace_schema_metadata(None))
    assert reference is not None
    return pa.concat_tables(tables), reference
