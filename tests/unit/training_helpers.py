"""Synthetic inputs for the training tests: a stand-in BirdNET model folder (model.json
records only its hash), embeddings files written as the pipeline writes them, and a
discover results folder with its sheets. No model runs."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.discovery.sheets import WindowRow, write_clusters
from bdisc.model.birdnet import EMBEDDING_DIM, MODEL_FILE, MODEL_NAME
from bdisc.model.labels import Label
from bdisc.outputs.embeddings import EmbeddingWriter, embeddings_path


def fake_model_dir(root: Path) -> Path:
    """A folder with a file where BirdNET's model would be (only its hash is read)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / MODEL_FILE).write_bytes(b"not really BirdNET")
    return root


def window(sha: str, **changes: Any) -> dict[str, Any]:
    """Window provenance as AnalysisParams.window_provenance writes it."""
    return {
        "model": MODEL_NAME,
        "model_version": "2.4",
        "model_precision": "FP32",
        "model_sha256": sha,
        "sample_rate": 48000,
        "window_s": 3.0,
        "overlap_s": 0.0,
        "min_len_s": 1.0,
        "bandpass_fmin": 0.0,
        "bandpass_fmax": 15000.0,
        **changes,
    }


def write_embeddings(
    folder: Path,
    rel: str,
    vectors: np.ndarray,
    provenance: dict[str, Any],
    step_s: float = 3.0,
) -> Path:
    """One recording's embeddings file under ``folder`` (windows every ``step_s``)."""
    path = embeddings_path(folder, rel)
    n, dim = vectors.shape
    meta = {
        "window": provenance,
        "recording": {"path": rel, "source": f"/audio/{rel}", "duration_s": n * step_s + 3},
    }
    writer = EmbeddingWriter(path, rel, dim, [Label.parse("Sci_Common")], meta)
    starts = np.arange(n) * step_s
    writer.add(
        starts,
        starts + 3.0,
        vectors,
        np.zeros((n, 1), dtype=np.int64),
        np.zeros((n, 1), dtype=np.float32),
        np.zeros(n, dtype=np.float32),
    )
    writer.close()
    return path


def centred(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    return (centre + rng.normal(0, 1, size=(n, centre.shape[0]))).astype(np.float32)


def results_folder(
    root: Path,
    sha: str,
    recordings: dict[str, tuple[int, np.ndarray]],
    clusters: dict[str, int],
    sheets: dict[str, Sequence[tuple[str, int, str]]],
) -> Path:
    """A discover results folder: ``recordings`` maps "folder/file" to (windows, centre
    of its embeddings); ``clusters`` each recording's cluster in its folder; ``sheets``
    the (Folder, Cluster, Label) rows of a folder's review.csv."""
    rng = np.random.default_rng(0)
    rows: dict[str, list[WindowRow]] = {}
    for rel, (n, centre) in recordings.items():
        write_embeddings(root / "embeddings", rel, centred(rng, centre, n), window(sha))
        folder, file = rel.split("/", 1)
        rows.setdefault(folder, []).extend(
            WindowRow(folder, file, 3.0 * i, 3.0 * i + 3, clusters[rel], 1.0, 0, 0, "", 0.0)
            for i in range(n)
        )
    for folder, table in rows.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        write_clusters(root / folder / "clusters.csv", table)
    for folder, review in sheets.items():
        with (root / folder / "review.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["Folder", "Cluster", "Label"], *review])
    return root


def centres(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 3, size=EMBEDDING_DIM) for _ in range(n)]
