"""Start from what BirdNET-Analyzer already computed: its embeddings become bdisc's
embeddings files, and no audio is embedded again.

A store is BirdNET-Analyzer 2.4's database (a folder with ``hoplite.sqlite``) or its 1.x
``.birdnet.embeddings.txt`` files. Each stored recording is matched to a recording of the
run by its path (the store's path ends with the recording's path under the input root).
What the store records or implies is checked and becomes the files' provenance: BirdNET
V2.4's 1024-d embeddings, 3-s windows, one overlap for every recording, the band-pass and
audio speed. The window settings of the store are the ones used; bdisc's own window
options are set aside, with a warning where they differ. Top labels are computed from the
embeddings with BirdNET's own last layer (``classifier_head``); audio levels are unknown
(NaN). Re-running skips recordings whose files came from the same, unchanged store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.errors import BdiscError, IncompatibleArtifact, describe
from bdisc.interop.analyzer_text import read_text_sources, text_files
from bdisc.interop.hoplite_db import (
    StoredWindows,
    StoreSettings,
    fingerprint,
    is_hoplite_db,
    read_settings,
    read_sources,
)
from bdisc.logs import fields
from bdisc.model.birdnet import (
    EMBEDDING_DIM,
    LABELS_FILE,
    MODEL_NAME,
    SAMPLE_RATE,
    WINDOW_S,
    default_model_dir,
)
from bdisc.model.classifier_head import ClassifierHead, classifier_head
from bdisc.model.labels import Label, read_labels
from bdisc.outputs.embeddings import EmbeddingWriter, embeddings_path, file_metadata
from bdisc.params import AnalysisParams
from bdisc.pipeline.scoring import Scorer
from bdisc.pipeline.summary import FileOutcome, RunSummary, write_reports
from bdisc.version import __version__ as VERSION

log = logging.getLogger(__name__)

JOB = "import"
STORE_NAMES = {
    "hoplite": "BirdNET-Analyzer 2.x embeddings database",
    "text": "BirdNET-Analyzer 1.x embeddings files",
}


@dataclass(frozen=True)
class Target:
    """A recording of the run: its absolute path and its path under the input root."""

    path: Path
    rel: str


@dataclass(frozen=True)
class Store:
    path: Path
    kind: str  # "hoplite" (BirdNET-Analyzer 2.x) or "text" (1.x)
    settings: StoreSettings
    stamp: str  # changes when the store does

    def sources(self) -> Iterator[StoredWindows]:
        return read_sources(self.path) if self.kind == "hoplite" else read_text_sources(self.path)

    def overlap(self) -> float:
        """The overlap of the first recording with two windows or more (0 if none has)."""
        for windows in self.sources():
            overlap = stored_overlap(windows)
            if overlap is not None:
                return overlap
        return 0.0


def open_store(path: Path) -> Store:
    if is_hoplite_db(path):
        settings = read_settings(path)
        return Store(path, "hoplite", settings, fingerprint(path))
    files = text_files(path)
    if not files:
        raise IncompatibleArtifact(
            f"{path} holds neither BirdNET-Analyzer's embeddings database (hoplite.sqlite) "
            "nor its .birdnet.embeddings.txt files",
            path=str(path),
        )
    stamp = ";".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    return Store(path, "text", StoreSettings(EMBEDDING_DIM, "text", None, None, None), stamp)


def window_provenance(store: Store, overlap_s: float) -> dict[str, Any]:
    s = store.settings
    return {
        "model": MODEL_NAME,
        "model_version": "2.4",
        "model_precision": f"{s.dtype} ({STORE_NAMES[store.kind]})",
        "model_sha256": None,
        "sample_rate": SAMPLE_RATE,
        "window_s": WINDOW_S,
        "overlap_s": overlap_s,
        "min_len_s": 1.0,
        "bandpass_fmin": s.bandpass_fmin,
        "bandpass_fmax": s.bandpass_fmax,
        **({"audio_speed": s.audio_speed} if s.audio_speed not in (None, 1.0) else {}),
    }


def stored_overlap(windows: StoredWindows) -> float | None:
    """The overlap the windows' spacing implies (None for a single window); refuses
    windows that are not all of one length."""
    lengths = np.unique(np.round(windows.ends[:-1] - windows.starts[:-1], 2))
    if len(lengths) > 1:
        raise IncompatibleArtifact(
            f"{windows.source}: windows of several lengths ({', '.join(map(str, lengths[:4]))} s)"
        )
    if len(windows.starts) < 2:
        return None
    steps = np.unique(np.round(np.diff(windows.starts), 2))
    if len(steps) != 1:
        raise IncompatibleArtifact(f"{windows.source}: windows at uneven steps")
    return round(float(lengths[0]) - float(steps[0]), 2)


@dataclass
class _Targets:
    """Finds the run's recording for a stored path: the longest tail of the stored path
    that is a recording's path under the input root (without its extension, for 1.x
    text files, which drop it)."""

    targets: Sequence[Target]
    kind: str
    by_name: dict[str, Target] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {}
        for t in self.targets:
            name = t.rel.rsplit(".", 1)[0] if self.kind == "text" else t.rel
            self.by_name[name] = t
            self.by_name[str(t.path)] = t

    def find(self, source: str) -> Target | None:
        parts = source.replace("\\", "/").split("/")
        for i in range(len(parts)):
            hit = self.by_name.get("/".join(parts[i:]))
            if hit is not None:
                return hit
        return None


@dataclass(frozen=True)
class _Importer:
    store: Store
    out_dir: Path
    params: AnalysisParams
    labels: Sequence[Label]
    head: ClassifierHead
    scorer: Scorer
    overlap: float
    force: bool

    def provenance(self, stored: StoredWindows, target: Target) -> dict[str, Any]:
        return {
            "bdisc_version": VERSION,
            "window": window_provenance(self.store, self.overlap),
            "scores": {
                **window_provenance(self.store, self.overlap),
                **self.params.scoring_provenance(),
                "from": "embeddings (BirdNET V2.4's last layer)",
            },
            "recording": {"path": target.rel, "source": stored.source},
            "import": {
                "store": str(self.store.path),
                "kind": self.store.kind,
                "stamp": self.store.stamp,
            },
        }

    def run(self, stored: StoredWindows, target: Target, outcome: FileOutcome) -> None:
        overlap = stored_overlap(stored)
        if overlap is not None and overlap != self.overlap:
            raise IncompatibleArtifact(
                f"{stored.source} has {overlap}-s overlap, the store's other recordings "
                f"{self.overlap} s: embeddings of one run share their windows"
            )
        path = embeddings_path(self.out_dir / "embeddings", target.rel)
        meta = self.provenance(stored, target)
        outcome.windows = len(stored.starts)
        outcome.duration_s = float(stored.ends[-1])
        if not self.force and path.is_file() and _same_import(path, meta):
            outcome.status = "skipped"
            return
        writer = EmbeddingWriter(path, target.rel, EMBEDDING_DIM, self.labels, meta)
        try:
            for lo in range(0, len(stored.starts), 2048):
                hi = lo + 2048
                vectors = stored.embeddings[lo:hi]
                idx, top = self.scorer.top_k(self.scorer.scores(self.head.logits(vectors)))
                levels = np.full(len(vectors), np.nan, dtype=np.float32)  # unknown
                writer.add(stored.starts[lo:hi], stored.ends[lo:hi], vectors, idx, top, levels)
            outcome.outputs = writer.close()
        except BaseException:
            writer.abort()
            raise
        outcome.status = "done"


def _same_import(path: Path, meta: dict[str, Any]) -> bool:
    try:
        old = file_metadata(path)
    except BdiscError:
        return False
    return bool(old.get("import") == meta["import"] and old.get("scores") == meta["scores"])


def _warn_set_aside(store: Store, params: AnalysisParams, overlap: float) -> None:
    s = store.settings
    asked = {
        "overlap": (params.overlap_s, overlap),
        "band-pass minimum": (params.bandpass.fmin, s.bandpass_fmin),
        "band-pass maximum": (params.bandpass.fmax, s.bandpass_fmax),
        "audio speed": (params.audio_speed, s.audio_speed),
    }
    differ = {k: v for k, v in asked.items() if v[1] is not None and float(v[0]) != float(v[1])}
    if differ:
        log.warning(
            "the stored embeddings' window settings are used: "
            + "; ".join(f"{k} {stored} (not {ours})" for k, (ours, stored) in differ.items()),
            extra=fields(store=str(store.path)),
        )


def import_embeddings(
    store_path: Path,
    targets: Sequence[Target],
    out_dir: Path,
    params: AnalysisParams,
    model_dir: Path | None = None,
    force: bool = False,
) -> RunSummary:
    """Write ``out_dir/embeddings/<rel>.embeddings.parquet`` for every recording the store
    holds; a recording it lacks fails with a clear error (errors.csv), the rest goes on."""
    started = time.monotonic()
    store = open_store(store_path)
    if store.settings.embedding_dim != EMBEDDING_DIM:
        raise IncompatibleArtifact(
            f"{store_path} holds {store.settings.embedding_dim}-d embeddings; BirdNET V2.4's "
            f"are {EMBEDDING_DIM}-d: they were made with another model",
            path=str(store_path),
        )
    overlap = store.overlap()
    _warn_set_aside(store, params, overlap)
    labels = read_labels((model_dir or default_model_dir()) / LABELS_FILE)
    importer = _Importer(
        store,
        out_dir,
        params,
        labels,
        classifier_head(model_dir),
        Scorer(params, labels, model_dir),
        overlap,
        force,
    )
    outcomes = {t.rel: FileOutcome(path=str(t.path), rel=t.rel) for t in targets}
    finder = _Targets(targets, store.kind)
    unmatched = 0
    for stored in store.sources():
        target = finder.find(stored.source)
        if target is None:
            unmatched += 1
            continue
        outcome = outcomes[target.rel]
        try:
            importer.run(stored, target, outcome)
        except BdiscError as exc:
            outcome.status = "failed"
            outcome.error, outcome.message = describe(exc)
    for outcome in outcomes.values():
        if outcome.status == "pending":
            outcome.status, outcome.error = "failed", "not_in_store"
            outcome.message = f"no embeddings for this recording in {store_path}"
    if unmatched:
        log.warning(
            f"{unmatched} recordings of the store match no recording under the input",
            extra=fields(store=str(store_path)),
        )
    result = list(outcomes.values())
    summary = RunSummary.of(JOB, result, time.monotonic() - started)
    write_reports(out_dir, JOB, summary, result)
    return summary
