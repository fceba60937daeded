"""A training set from a folder of clips, ``TRAINSET/<Label>/*.wav`` (what ``bdisc
export`` and BirdNET-Analyzer's trainer use): the clips are embedded with bdisc's own
pipeline (resumable: clips already embedded are not run again), then every window of a
clip takes its folder's label. ``manifest.csv`` (written by ``bdisc export``) names the
recording each clip was cut from, so that clips of one recording stay on one side of a
split; a clip it does not list is its own recording.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

import numpy as np

from bdisc.audio.formats import iter_inputs
from bdisc.discovery.export import MANIFEST, read_manifest
from bdisc.errors import NotFound
from bdisc.logs import fields
from bdisc.outputs.embeddings import embedding_matrix, embeddings_path, read_embeddings
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig
from bdisc.training.dataset import TrainingSet, assemble

log = logging.getLogger(__name__)


def is_clip_folder(path: Path) -> bool:
    return path.is_dir() and any(len(_rel(path, f).parts) == 2 for _, f in iter_inputs([path]))


def _rel(root: Path, file: Path) -> PurePosixPath:
    return PurePosixPath(file.relative_to(root).as_posix())


def clip_sources(trainset: Path) -> dict[str, tuple[str, float]]:
    """clip (path inside the training set) -> (the recording it was cut from, where the
    clip starts in it)."""
    manifest = trainset / MANIFEST
    if not manifest.is_file():
        return {}
    clips = read_manifest(manifest.read_text(encoding="utf-8"))
    return {
        c.clip: (f"{c.folder}/{c.file}" if c.folder else c.file, max(0.0, c.start_s - c.pad_s))
        for c in clips
    }


def from_clips(trainset: Path, config: RunConfig) -> TrainingSet:
    """Embed the clips into ``config.out_dir`` and read them back as a training set.
    Only clips in a label folder count (``<Label>/clip.wav``; files in the root or
    deeper folders are skipped)."""
    clips = [_rel(trainset, f) for _, f in iter_inputs([trainset])]
    labelled = [c for c in clips if len(c.parts) == 2]
    if not labelled:
        raise NotFound(
            f"no clips in label folders under {trainset} (expected <Label>/<clip>.wav)",
            path=str(trainset),
        )
    if len(labelled) < len(clips):
        log.warning(
            "clips outside label folders were skipped",
            extra=fields(skipped=len(clips) - len(labelled)),
        )
    summary = api.embed([trainset], config, base=trainset)
    if summary.failed:
        log.warning(
            "some clips could not be embedded and were left out (see errors.csv)",
            extra=fields(failed=summary.failed, out=str(config.out_dir)),
        )
    emb_dir = config.out_dir / "embeddings"
    files = [embeddings_path(emb_dir, c.as_posix()) for c in labelled]
    present = [f for f in files if f.is_file()]
    if not present:
        raise NotFound(f"no clip of {trainset} could be embedded", path=str(trainset))
    table, provenance = read_embeddings(present)
    sources = clip_sources(trainset)
    rels = [str(r) for r in table.column("recording").to_pylist()]
    where = [sources.get(r, (r, 0.0)) for r in rels]
    starts = np.asarray(table.column("start_s").to_numpy(), dtype=np.float64)
    ends = np.asarray(table.column("end_s").to_numpy(), dtype=np.float64)
    return assemble(
        embedding_matrix(table),
        [PurePosixPath(r).parts[0] for r in rels],
        [recording for recording, _ in where],
        [offset + float(s) for (_, offset), s in zip(where, starts, strict=True)],
        provenance,
        [offset + float(e) for (_, offset), e in zip(where, ends, strict=True)],
    )
