"""A run's embeddings as BirdNET-Analyzer 2.4's embeddings database (perch-hoplite 0.1.x
layout), so that its ``search`` command and perch-hoplite's tools open them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bdisc.errors import IncompatibleArtifact, NotFound
from bdisc.interop.hoplite_db import HopliteWriter, StoreSettings
from bdisc.model.birdnet import EMBEDDING_DIM
from bdisc.outputs.embeddings import file_metadata, find_embedding_files

HOPLITE_FOLDER = "hoplite"


def export_hoplite(embeddings: Path, out: Path) -> Path:
    """Every embeddings file under ``embeddings`` into the database folder ``out``
    (rewritten whole; one source per recording, named by its original path as
    BirdNET-Analyzer names them)."""
    files = find_embedding_files([embeddings]) if embeddings.exists() else []
    if not files:
        raise NotFound(f"no embeddings files under {embeddings}")
    window = file_metadata(files[0])["window"]
    for f in files[1:]:
        if file_metadata(f)["window"] != window:
            raise IncompatibleArtifact(
                f"{f} was made with other window settings than {files[0]}: one database "
                "holds embeddings of one kind",
                path=str(f),
            )
    settings = StoreSettings(
        EMBEDDING_DIM,
        "float16",
        window["bandpass_fmin"],
        window["bandpass_fmax"],
        window.get("audio_speed", 1.0),
    )
    building = out.with_name(out.name + ".partial")
    writer = HopliteWriter(building, settings)
    try:
        for f in files:
            meta = file_metadata(f)
            table = pq.read_table(f, columns=["start_s", "end_s", "embedding"])
            column: Any = table.column("embedding").combine_chunks()
            writer.add(
                str(meta["recording"].get("source") or meta["recording"]["path"]),
                table.column("start_s").to_numpy(),
                table.column("end_s").to_numpy(),
                np.asarray(column.flatten().to_numpy()).reshape(-1, EMBEDDING_DIM),
            )
        writer.close()
    except BaseException:
        writer.db.close()
        shutil.rmtree(building, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)  # a database is written whole, never half
    building.rename(out)
    return out
