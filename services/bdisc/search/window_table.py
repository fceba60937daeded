"""Id -> window: which recording and time span each vector of the index is, stored as
``index/windows-<generation>.parquet`` (row ``i`` is id ``i``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bdisc.fsutil import commit, temp_path
from bdisc.search.stored_windows import StoredWindows

COLUMNS = ("recording", "start_s", "end_s", "top_label", "top_score", "rms_dbfs")


@dataclass(frozen=True)
class WindowTable:
    recording: np.ndarray  # object (n,)
    start_s: np.ndarray  # float64 (n,)
    end_s: np.ndarray  # float64 (n,)
    top_label: np.ndarray  # object (n,)
    top_score: np.ndarray  # float32 (n,)
    rms_dbfs: np.ndarray  # float32 (n,)

    def __len__(self) -> int:
        return int(self.start_s.shape[0])

    @classmethod
    def empty(cls) -> WindowTable:
        return cls.of([])

    @classmethod
    def of(cls, parts: Sequence[StoredWindows]) -> WindowTable:
        """The rows of these recordings' windows, one after the other."""
        return cls(
            recording=np.array([p.recording for p in parts for _ in range(len(p))], dtype=object),
            start_s=np.concatenate([np.zeros(0), *(p.start_s for p in parts)]),
            end_s=np.concatenate([np.zeros(0), *(p.end_s for p in parts)]),
            top_label=np.concatenate([np.zeros(0, dtype=object), *(p.top_label for p in parts)]),
            top_score=np.concatenate(
                [np.zeros(0, dtype=np.float32), *(p.top_score for p in parts)]
            ).astype(np.float32),
            rms_dbfs=np.concatenate(
                [np.zeros(0, dtype=np.float32), *(p.rms_dbfs for p in parts)]
            ).astype(np.float32),
        )

    def extended(self, more: WindowTable) -> WindowTable:
        return WindowTable(*(np.concatenate([getattr(self, c), getattr(more, c)]) for c in COLUMNS))

    def save(self, path: Path) -> None:
        table = pa.table(
            {
                "recording": pa.array(self.recording.tolist(), pa.string()),
                "start_s": pa.array(self.start_s, pa.float64()),
                "end_s": pa.array(self.end_s, pa.float64()),
                "top_label": pa.array(self.top_label.tolist(), pa.string()),
                "top_score": pa.array(self.top_score, pa.float32()),
                "rms_dbfs": pa.array(self.rms_dbfs, pa.float32()),
            }
        )
        tmp = temp_path(path)
        pq.write_table(table, tmp, compression="zstd")
        commit(tmp, path)

    @classmethod
    def load(cls, path: Path) -> WindowTable:
        table = pq.read_table(path, columns=list(COLUMNS))
        return cls(
            recording=np.array(table.column("recording").to_pylist(), dtype=object),
            start_s=table.column("start_s").to_numpy(),
            end_s=table.column("end_s").to_numpy(),
            top_label=np.array(table.column("top_label").to_pylist(), dtype=object),
            top_score=table.column("top_score").to_numpy().astype(np.float32),
            rms_dbfs=table.column("rms_dbfs").to_numpy().astype(np.float32),
        )
