"""A discovery job's stored results as a local results folder, laid out as ``bdisc
discover`` writes one, so that the training stage runs the CLI's own functions on it:

    results/<folder>/clusters.csv   every folder of the job's results that has one (the
                                    deployments, and search and suggestion groups)
    results/<folder>/review.csv     its sheet, with the label store's labels
    results/sound_types.csv         the linked sound types, if any
    results/embeddings/<rel>.embeddings.parquet
                                    each recording's embeddings (a long recording's
                                    parts joined in order)
    overrides.csv                   the per-window labels (beside the folder)

Embeddings objects are addressed by content and never change, so a recording's local
file gets a modification time derived from its objects' keys: the window index kept
beside the results (``index/``) recognises it as unchanged in the next job.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bdisc.app.keys import audio_prefix, group_of, job_results_prefix
from bdisc.app.label_sheets import JobLabels, job_labels, write_csv, write_overrides
from bdisc.app.messages import EmbeddedRecording, StoredResults
from bdisc.app.object_file import open_object
from bdisc.audio.segments import read_segment
from bdisc.discovery.labelled_sheet import with_labels
from bdisc.discovery.linking import SOUND_TYPES_FILE
from bdisc.discovery.sheets import CLUSTERS_FILE, REVIEW_FILE
from bdisc.errors import IncompatibleArtifact, NotFound
from bdisc.logs import fields
from bdisc.outputs.embeddings import embeddings_path
from bdisc.ports.object_store import ObjectStore
from bdisc.search.manifest import Manifest
from bdisc.search.window_index import MANIFEST_FILE, index_folder
from bdisc.training.from_results import EMBEDDINGS_FOLDER
from bdisc.training.suggest import SUGGEST_FILE

log = logging.getLogger(__name__)

OVERRIDES_FILE = "overrides.csv"
INDEX_FOLDER = "index/"
# A fixed epoch for the derived modification times (2001-09-09), plus up to ~31 years.
_EPOCH_NS = 1_000_000_000 * 10**9


@dataclass(frozen=True)
class LocalResults:
    results: Path
    overrides: Path
    folders: list[str]  # the folders with a clusters.csv


def result_folders(objects: ObjectStore, prefix: str) -> list[str]:
    """The folders under a job's results prefix that hold a clusters.csv."""
    return sorted(
        key[len(prefix) : -len(CLUSTERS_FILE) - 1]
        for key in objects.list(prefix)
        if key.endswith("/" + CLUSTERS_FILE) and key.count("/", len(prefix)) == 1
    )


class ResultsReader:
    """Copies what a job needs of a discovery job's results into a local folder."""

    def __init__(self, objects: ObjectStore, project: str, source: StoredResults) -> None:
        self.objects, self.project, self.source = objects, project, source
        self.prefix = job_results_prefix(project, source.discovery_job)
        # "<folder>/<file>", as sheets name a recording -> its path
        self._names = {
            f"{group_of(r.rel)}/{r.rel.split('/', 1)[-1]}": r.rel for r in source.recordings
        }

    def fetch(self, root: Path, *, sheets: bool = True) -> LocalResults:
        results = root / "results"
        results.mkdir(parents=True, exist_ok=True)
        self.fetch_embeddings(results / EMBEDDINGS_FOLDER)
        folders = result_folders(self.objects, self.prefix) if sheets else []
        overrides = root / OVERRIDES_FILE
        if sheets:
            types = results / SOUND_TYPES_FILE
            if self.objects.exists(self.prefix + SOUND_TYPES_FILE):
                self.objects.download(self.prefix + SOUND_TYPES_FILE, types)
            labels = job_labels(self.source.labels, folders, types if types.is_file() else None)
            for folder in folders:
                self._fetch_sheets(results / folder, folder, labels)
            write_overrides(overrides, labels)
        return LocalResults(results, overrides, folders)

    def _fetch_sheets(self, local: Path, folder: str, labels: JobLabels) -> None:
        key = f"{self.prefix}{folder}/"
        self.objects.download(key + CLUSTERS_FILE, local / CLUSTERS_FILE)
        if self.objects.exists(key + SUGGEST_FILE):  # a suggestion group stays one
            self.objects.download(key + SUGGEST_FILE, local / SUGGEST_FILE)
        mine = labels.of_folder(folder)
        if self.objects.exists(key + REVIEW_FILE):
            text = self.objects.get_bytes(key + REVIEW_FILE).decode("utf-8")
            (local / REVIEW_FILE).write_text(with_labels(text, mine), encoding="utf-8")
        else:
            rows: list[dict[str, object]] = [
                {"Folder": folder, "Cluster": c, "Label": lab} for c, lab in mine.items()
            ]
            write_csv(local / REVIEW_FILE, ["Folder", "Cluster", "Label"], rows)

    def fetch_embeddings(self, folder: Path) -> None:
        """Each recording's embeddings file under ``folder``, by its path."""
        parts: dict[str, list[EmbeddedRecording]] = defaultdict(list)
        for rec in self.source.recordings:
            parts[rec.rel].append(rec)
        for rel, pieces in sorted(parts.items()):
            pieces.sort(key=lambda r: r.first)
            path = embeddings_path(folder, rel)
            if len(pieces) == 1:
                self.objects.download(pieces[0].embeddings, path)
            else:
                self._join(pieces, path)
            stamp = _EPOCH_NS + _stamp([p.embeddings for p in pieces])
            os.utime(path, ns=(stamp, stamp))

    def _join(self, pieces: list[EmbeddedRecording], path: Path) -> None:
        """A long recording's parts, in order, as one file with the first's provenance."""
        tables = []
        for i, piece in enumerate(pieces):
            local = path.with_name(f".{path.name}.{i}")
            self.objects.download(piece.embeddings, local)
            tables.append(pq.read_table(local))
            local.unlink()
        schema = tables[0].schema
        joined = pa.concat_tables([t.replace_schema_metadata(schema.metadata) for t in tables])
        pq.write_table(joined, path, compression="zstd")

    def read_span(self, name: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
        """A span of a recording of the project (named by its path, or as sheets name it:
        folder/file), by ranged reads."""
        rel = self._names.get(name, name)
        with open_object(self.objects, audio_prefix(self.project) + rel) as source:
            return read_segment(source, start_s, end_s)

    # -- the window index, kept beside the discovery job's results -------------------------

    def fetch_index(self, results: Path) -> None:
        """The stored window index, if any (``bdisc.search`` brings it up to date): its
        manifest, then the files that manifest names. Files another job's publication
        replaced in between are missing: the index is then rebuilt, never mismatched."""
        local = index_folder(results)
        key = self.prefix + INDEX_FOLDER
        try:
            self.objects.download(key + MANIFEST_FILE, local / MANIFEST_FILE)
            manifest = Manifest.from_json((local / MANIFEST_FILE).read_text(encoding="utf-8"))
            for name in (manifest.vectors_file, manifest.table_file):
                self.objects.download(key + name, local / name)
        except (NotFound, IncompatibleArtifact) as exc:
            log.info("stored window index not usable", extra=fields(reason=str(exc)))

    def keep_index(self, results: Path) -> None:
        """Publish the index: its data files first, the manifest naming them last, then
        the files of the generation the stored manifest named before. A reader sees one
        index or the other; two jobs publishing at once at worst leave a generation's
        files behind, never a manifest with another's files."""
        local = index_folder(results)
        if not (local / MANIFEST_FILE).is_file():
            return
        key = self.prefix + INDEX_FOLDER
        mine = Manifest.from_json((local / MANIFEST_FILE).read_text(encoding="utf-8"))
        before = self._stored_manifest(key)
        for name in (mine.vectors_file, mine.table_file):
            self.objects.put_file(key + name, local / name)
        self.objects.put_file(key + MANIFEST_FILE, local / MANIFEST_FILE)
        if before is not None and before.generation != mine.generation:
            for name in (before.vectors_file, before.table_file):
                with contextlib.suppress(NotFound):
                    self.objects.delete(key + name)

    def _stored_manifest(self, key: str) -> Manifest | None:
        try:
            return Manifest.from_json(self.objects.get_bytes(key + MANIFEST_FILE).decode())
        except (NotFound, IncompatibleArtifact, UnicodeDecodeError):
            return None


def _stamp(keys: list[str]) -> int:
    """A modification time (ns after the epoch above) that only these keys give."""
    digest = hashlib.sha256("\n".join(keys).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (10**18)
