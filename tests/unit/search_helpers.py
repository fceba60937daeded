"""Stored embeddings files for the search tests: synthetic vectors written by bdisc's own
writer, with the metadata bdisc embed records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bdisc.model.labels import Label
from bdisc.outputs.embeddings import EmbeddingWriter, embeddings_path

DIM = 1024
PROVENANCE: dict[str, Any] = {
    "model": "BirdNET_GLOBAL_6K_V2.4",
    "model_version": "2.4",
    "model_precision": "FP32",
    "model_sha256": "0" * 64,
    "sample_rate": 48000,
    "window_s": 3.0,
    "overlap_s": 0.0,
    "min_len_s": 1.0,
    "bandpass_fmin": 0.0,
    "bandpass_fmax": 15000.0,
}
LABELS = [Label("Turdus merula", "Eurasian Blackbird"), Label("Pica pica", "Eurasian Magpie")]


def clustered(
    n: int, dim: int = DIM, centres: int = 50, spread: float = 0.35, seed: int = 0
) -> np.ndarray:
    """Non-negative vectors around ``centres`` directions (BirdNET embeddings are
    post-ReLU averages), noisy enough that neighbours are not trivial."""
    rng = np.random.default_rng(seed)
    middle = rng.gamma(2.0, 1.0, (centres, dim)).astype(np.float32)
    which = rng.integers(0, centres, n)
    noise = rng.gamma(2.0, 1.0, (n, dim)).astype(np.float32)
    return (1 - spread) * middle[which] + spread * noise


def write_stored(
    results: Path,
    rel: str,
    vectors: np.ndarray,
    provenance: dict[str, Any] | None = None,
    rms_dbfs: float = -30.0,
) -> Path:
    """One recording's embeddings file, as bdisc embed writes it."""
    n = len(vectors)
    path = embeddings_path(results / "embeddings", rel)
    meta = {
        "window": provenance or PROVENANCE,
        "recording": {"path": rel, "source": f"/data/{rel}", "duration_s": 3.0 * n},
    }
    writer = EmbeddingWriter(path, rel, vectors.shape[1], LABELS, meta)
    starts = np.arange(n) * 3.0
    writer.add(
        starts,
        starts + 3.0,
        vectors,
        np.zeros((n, 1), dtype=np.int64),
        np.full((n, 1), 0.5, dtype=np.float32),
        np.full(n, rms_dbfs, dtype=np.float32),
    )
    writer.close()
    return path
