"""Start from what BirdNET-Analyzer already computed: its embeddings become bdisc's
embeddings files, and no audio is embedded again.

A store is BirdNET-Analyzer 2.4's database (a folder with ``hoplite.sqlite``) or its 1.x
``.birdnet.embeddings.txt`` files. Each stored recording is matched to a recording of the
run by its path (``path_match``: the stored path ends with the recording's path under the
input root); two stored recordings that name one recording fail it as ambiguous. What
the store records or implies is checked and becomes the files' provenance: BirdNET V2.4's
1024-d embeddings, 3-s windows, one overlap for every recording, the band-pass and audio
speed, and the store itself (so files from two stores, or from a store and from audio,
are never mixed). The window settings of the store are the ones used; bdisc's own window
options are set aside, with a warning where they differ. Top labels are computed from
the embeddings with BirdNET's own last layer (``classifier_head``); audio levels are
unknown (NaN). Re-running skips recordings whose files came from the same, unchanged
store; a recording that fails loses the file an earlier import made for it (derived
data, never a file embedded from audio), so that no stale windows are clustered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import BdiscError, IncompatibleArtifact, describe
from bdisc.interop.analyzer_text import read_text_sources, text_files
from bdisc.interop.hoplite_db import (
    StoredWindows,
    StoreSettings,
    Unreadable,
    fingerprint,
    is_hoplite_db,
    read_settings,
    read_sources,
)
from bdisc.interop.path_match import TailIndex
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
from bdisc.model.port import ModelInfo
from bdisc.outputs.embeddings import TEXT_SUFFIX, EmbeddingWriter, embeddings_path, file_metadata
from bdisc.outputs.names import name_clash, name_clashes
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
BATCH = 2048


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

    def sources(self) -> Iterator[StoredWindows | Unreadable]:
        return read_sources(self.path) if self.kind == "hoplite" else read_text_sources(self.path)

    def overlap(self) -> float:
        """The overlap of the first readable recording with two windows or more (0 if
        none has); recordings that cannot tell are passed over here."""
        for windows in self.sources():
            if isinstance(windows, Unreadable):
                continue
            try:
                overlap = stored_overlap(windows)
            except IncompatibleArtifact:
                continue
            if overlap is not None:
                return overlap
        return 0.0

    def model(self) -> ModelInfo:
        return ModelInfo(
            name=MODEL_NAME,
            version="2.4",
            precision=f"{self.settings.dtype} ({STORE_NAMES[self.kind]})",
            sha256="",
            sample_rate=SAMPLE_RATE,
            window_s=WINDOW_S,
            embedding_dim=EMBEDDING_DIM,
            n_classes=0,
        )

    def params(self, overlap_s: float, asked: AnalysisParams) -> AnalysisParams:
        """Our parameters with the store's window settings in place of ours."""
        s = self.settings
        band = Bandpass(
            asked.bandpass.fmin if s.bandpass_fmin is None else s.bandpass_fmin,
            asked.bandpass.fmax if s.bandpass_fmax is None else s.bandpass_fmax,
        )
        speed = asked.audio_speed if s.audio_speed is None else s.audio_speed
        return replace(asked, overlap_s=overlap_s, bandpass=band, audio_speed=speed)


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


def stored_overlap(windows: StoredWindows) -> float | None:
    """The overlap the windows' spacing implies (None for a single window); refuses
    windows of several lengths. Windows that reach the recording's end may be shorter."""
    inner = windows.ends < windows.ends.max() - 1e-6
    lengths = np.unique(np.round(windows.ends[inner] - windows.starts[inner], 2))
    if len(lengths) > 1:
        raise IncompatibleArtifact(
            f"{windows.source}: windows of several lengths ({', '.join(map(str, lengths[:4]))} s)"
        )
    if len(windows.starts) < 2:
        return None
    steps = np.unique(np.round(np.diff(windows.starts), 2))
    if len(steps) != 1:
        raise IncompatibleArtifact(f"{windows.source}: windows at uneven steps")
    length = float(lengths[0]) if len(lengths) else WINDOW_S
    return round(length - float(steps[0]), 2)


@dataclass(frozen=True)
class _Importer:
    store: Store
    out_dir: Path
    params: AnalysisParams  # with the store's window settings
    labels: Sequence[Label]
    head: ClassifierHead
    scorer: Scorer
    text: bool
    force: bool

    def provenance(self, stored: StoredWindows, target: Target) -> dict[str, Any]:
        window = {
            **self.params.window_provenance(self.store.model()),
            "store": {"path": str(self.store.path), "stamp": self.store.stamp},
        }
        return {
            "bdisc_version": VERSION,
            "window": window,
            "scores": {
                **window,
                **self.params.scoring_provenance(),
                "from": "embeddings (BirdNET V2.4's last layer)",
            },
            "recording": {"path": target.rel, "source": str(target.path)},
            "import": {"kind": self.store.kind, "source": stored.source},
        }

    def run(self, stored: StoredWindows, target: Target, outcome: FileOutcome) -> None:
        overlap = stored_overlap(stored)
        if overlap is not None and overlap != self.params.overlap_s:
            raise IncompatibleArtifact(
                f"{stored.source} has {overlap}-s overlap, the store's other recordings "
                f"{self.params.overlap_s} s: embeddings of one run share their windows"
            )
        path = embeddings_path(self.out_dir / "embeddings", target.rel)
        meta = self.provenance(stored, target)
        outcome.windows = len(stored.starts)
        outcome.duration_s = float(stored.ends[-1])
        if not self.force and path.is_file() and _same_import(path, meta):
            outcome.status = "skipped"
            outcome.outputs = [path]
            return
        base = path.with_name(path.name.removesuffix(".embeddings.parquet"))
        text = base.with_name(base.name + TEXT_SUFFIX) if self.text else None
        writer = EmbeddingWriter(path, target.rel, EMBEDDING_DIM, self.labels, meta, text)
        try:
            for lo in range(0, len(stored.starts), BATCH):
                vectors = stored.embeddings[lo : lo + BATCH]
                idx, top = self.scorer.top_k(self.scorer.scores(self.head.logits(vectors)))
                levels = np.full(len(vectors), np.nan, dtype=np.float32)  # unknown
                writer.add(
                    stored.starts[lo : lo + BATCH],
                    stored.ends[lo : lo + BATCH],
                    vectors,
                    idx,
                    top,
                    levels,
                )
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
    return all(old.get(k) == meta[k] for k in ("window", "scores", "import", "recording"))


def _names_refused(source: str, rel: str, clashes: dict[str, str]) -> bool:
    """Whether a stored path that names the kept recording ``rel`` (audio extensions
    aside) names, by its file name with extension and letter case, one refused for
    clashing with it."""
    name = PurePosixPath(source.replace("\\", "/")).name
    if name == PurePosixPath(rel).name:
        return False
    return any(name == PurePosixPath(r).name for r, kept in clashes.items() if kept == rel)


def _drop_stale(out_dir: Path, target: Target) -> None:
    """Remove an earlier import's file for a recording this import failed."""
    path = embeddings_path(out_dir / "embeddings", target.rel)
    try:
        imported = "import" in file_metadata(path)
    except (BdiscError, OSError):
        return
    if imported:
        path.unlink(missing_ok=True)


def _warn_set_aside(store: Store, params: AnalysisParams, used: AnalysisParams) -> None:
    asked = {
        "overlap": (params.overlap_s, used.overlap_s),
        "band-pass minimum": (params.bandpass.fmin, used.bandpass.fmin),
        "band-pass maximum": (params.bandpass.fmax, used.bandpass.fmax),
        "audio speed": (params.audio_speed, used.audio_speed),
    }
    differ = {k: v for k, v in asked.items() if float(v[0]) != float(v[1])}
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
    text: bool = False,
) -> RunSummary:
    """Write ``out_dir/embeddings/<rel>.embeddings.parquet`` (with ``text``, also 1.x's
    text file) for every recording the store holds; a recording it lacks, or holds
    twice, or cannot read, or whose file name another recording's takes (``NameClash``),
    fails with a clear error (errors.csv), and the rest goes on."""
    started = time.monotonic()
    store = open_store(store_path)
    if store.settings.embedding_dim != EMBEDDING_DIM:
        raise IncompatibleArtifact(
            f"{store_path} holds {store.settings.embedding_dim}-d embeddings; BirdNET V2.4's "
            f"are {EMBEDDING_DIM}-d: they were made with another model",
            path=str(store_path),
        )
    used = store.params(store.overlap(), params)
    _warn_set_aside(store, params, used)
    labels = read_labels((model_dir or default_model_dir()) / LABELS_FILE)
    importer = _Importer(
        store,
        out_dir,
        used,
        labels,
        classifier_head(model_dir),
        Scorer(used, labels, model_dir),
        text,
        force,
    )
    outcomes = {t.rel: FileOutcome(path=str(t.path), rel=t.rel) for t in targets}
    clashes = name_clashes(outcomes)
    for rel, kept in clashes.items():
        outcomes[rel].status = "failed"
        outcomes[rel].error, outcomes[rel].message = describe(name_clash(rel, kept))
    finder = TailIndex(((t.rel, str(t.path)), t) for t in targets if t.rel not in clashes)
    matched: dict[str, str] = {}
    unmatched = 0
    for stored in store.sources():
        target = finder.find(stored.source)
        if target is None:
            unmatched += 1
            continue
        if _names_refused(stored.source, target.rel, clashes):
            continue  # the refused recording's own windows are not the kept one's
        outcome = outcomes[target.rel]
        if target.rel in matched:
            outcome.status, outcome.error = "failed", "ambiguous"
            outcome.message = (
                f"two recordings of the store match it: {matched[target.rel]} and {stored.source}"
            )
            continue
        matched[target.rel] = stored.source
        if isinstance(stored, Unreadable):
            outcome.status, outcome.error = "failed", IncompatibleArtifact.__name__
            outcome.message = f"{stored.source}: {stored.message}"
            continue
        try:
            importer.run(stored, target, outcome)
        except BdiscError as exc:
            outcome.status = "failed"
            outcome.error, outcome.message = describe(exc)
    for target in targets:
        outcome = outcomes[target.rel]
        if outcome.status == "pending":
            outcome.status, outcome.error = "failed", "not_in_store"
            outcome.message = f"no embeddings for this recording in {store_path}"
        if outcome.status == "failed" and target.rel not in clashes:
            _drop_stale(out_dir, target)  # a refused one's path is the kept one's file
    if unmatched:
        log.warning(
            f"{unmatched} recordings of the store match no recording under the input",
            extra=fields(store=str(store_path)),
        )
    result = list(outcomes.values())
    summary = RunSummary.of(JOB, result, time.monotonic() - started)
    write_reports(out_dir, JOB, summary, result)
    return summary
