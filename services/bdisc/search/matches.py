"""The stored windows nearest to a query, as records a person (and export) can use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from bdisc.search.window_index import WindowIndex


@dataclass(frozen=True)
class Match:
    rank: int  # 1 = nearest
    distance: float  # cosine distance to the query (0 = same direction, 2 = opposite)
    window_id: int
    recording: str  # relative to the input root, as the embeddings name it
    start_s: float
    end_s: float
    folder: str  # the deployment, as discovery's sheets name it
    file: str  # the recording inside the deployment folder
    source: str  # where the recording was read from
    top_label: str
    top_score: float


def folder_and_file(recording: str, source: str) -> tuple[str, str]:
    """A recording's (Folder, file) as ``bdisc discover`` names them: its first folder
    below the input root, or (for a file in the root) the root's own name."""
    parts = recording.split("/", 1)
    if len(parts) == 2:
        return parts[0], parts[1]
    return PurePosixPath(source.replace("\\", "/")).parent.name, recording


# Candidates asked for beyond ``top``, so that windows at the same distance as the last
# one kept are ranked by name, not by the order their files were indexed in.
TIE_MARGIN = 8


def nearest(
    index: WindowIndex, query: np.ndarray, top: int, max_distance: float | None = None
) -> list[Match]:
    """Up to ``top`` windows nearest to ``query``, no farther than ``max_distance``; at
    equal distance, by recording and start (the same order however the index was built,
    e.g. on the platform, where files arrive in any order)."""
    wanted = top + TIE_MARGIN
    ids, distances = index.search(query[None, :], wanted)
    # many windows at the cut-off distance (copies, silence): ask for more until the last
    # one found is farther, so that the ones kept are the first by name
    while wanted < len(index) and top <= ids.shape[1] and ids[0, -1] >= 0:
        if distances[0, -1] > distances[0, top - 1]:
            break
        wanted *= 2
        ids, distances = index.search(query[None, :], wanted)
    t = index.table
    candidates = sorted(
        (
            (
                max(0.0, float(distance)),
                index.entry(window_id).recording,
                float(t.start_s[window_id]),
                window_id,
            )
            for window_id, distance in zip(ids[0].tolist(), distances[0].tolist(), strict=True)
            if window_id >= 0 and (max_distance is None or distance <= max_distance)
        )
    )
    found: list[Match] = []
    for distance, _, _, window_id in candidates[:top]:
        entry = index.entry(window_id)
        folder, file = folder_and_file(entry.recording, entry.source)
        found.append(
            Match(
                rank=len(found) + 1,
                distance=distance,
                window_id=window_id,
                recording=entry.recording,
                start_s=float(t.start_s[window_id]),
                end_s=float(t.end_s[window_id]),
                folder=folder,
                file=file,
                source=entry.source,
                top_label=str(t.top_label[window_id]),
                top_score=float(t.top_score[window_id]),
            )
        )
    return found
