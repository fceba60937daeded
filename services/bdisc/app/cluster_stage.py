"""The clustering stage: one deployment's embeddings (in the object store) -> clusters,
review sheet, montages, map and page under the job's results prefix.

Runs the same per-group function as ``bdisc discover``. Montage tiles and snippets are
cut from the recordings by ranged reads: only their spans are fetched.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.adapters.object_file import open_object
from bdisc.app import stages
from bdisc.app.events import report_event
from bdisc.app.keys import audio_prefix, job_results_prefix, results_prefix
from bdisc.audio.segments import read_segment
from bdisc.discovery.api import DiscoverConfig, cluster_group, prune_windows, windows_from_files
from bdisc.discovery.linking import (
    PROTOTYPES_FILE,
    SOUND_TYPES_FILE,
    LinkParams,
    Member,
    annotate_groups,
    link_groups,
)
from bdisc.discovery.sheets import CLUSTERS_FILE, REVIEW_FILE
from bdisc.errors import describe, is_retryable
from bdisc.logs import fields
from bdisc.outputs.embeddings import file_metadata
from bdisc.ports.message_bus import Message, MessageBus
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".png": "image/png",
    ".html": "text/html",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".ogg": "audio/ogg",
    ".json": "application/json",
}


class ClusterStage:
    def __init__(self, objects: ObjectStore, bus: MessageBus, scratch: Path | None = None) -> None:
        self.objects, self.bus, self.scratch = objects, bus, scratch

    def _event(self, message: Message, kind: str, **extra: str) -> None:
        report_event(self.bus, message, kind, group=message.payload["group"], **extra)

    def handle(self, message: Message) -> None:
        p = message.payload
        if stages.is_link(p):
            self._link_step(message)
            return
        project, group = p["project"], p["group"]
        if not p["embeddings"]:
            self._event(
                message,
                stages.CLUSTER_FAILED,
                error="no recording of this deployment could be embedded",
            )
            return
        try:
            prefix = self._run(message, project, group, p["embeddings"], p)
        except Exception as exc:
            if is_retryable(exc):
                raise  # the bus retries with backoff
            self._event(message, stages.CLUSTER_FAILED, error=": ".join(describe(exc)))
            return
        self._event(message, stages.CLUSTERED, output=prefix)

    def _run(
        self,
        message: Message,
        project: str,
        group: str,
        keys: list[str],
        job: dict[str, Any],
    ) -> str:
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            root = Path(tmp)
            files, where = [], {}
            for i, key in enumerate(keys):
                local = root / "embeddings" / f"{i:06d}.parquet"
                self.objects.download(key, local)
                rel = file_metadata(local)["recording"]["path"]
                files.append(local)
                where[rel] = (group, rel.split("/", 1)[-1])

            def read_span(rel: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
                # ranged reads: montage tiles fetch their 3 s, not the recordings
                with open_object(self.objects, audio_prefix(project) + rel) as source:
                    return read_segment(source, start_s, end_s)

            config = DiscoverConfig.from_job(root / "audio", root / "out", job)
            windows, provenance = windows_from_files(files, where)
            kept, removed = prune_windows(windows, config.prune)
            settings = {
                "prune": {**config.prune.as_dict(), "removed": removed},
                "cluster": config.cluster.as_dict(),
                "embedding": provenance,
                "montage_cap": config.montage_cap,
                "spectrogram": asdict(config.style),
                "job_id": message.job_id,
            }
            result = cluster_group(group, kept, root / "out" / group, settings, read_span, config)
            prefix = results_prefix(project, message.job_id, group)
            self._publish_folder(root / "out" / group, prefix)
        log.info(
            "clustered",
            extra=fields(
                job_id=message.job_id, group=group, clusters=result.clusters, windows=result.windows
            ),
        )
        return prefix

    def _link_step(self, message: Message) -> None:
        """The fan-in step: every clustered deployment's prototypes -> sound types
        (``sound_types.csv`` under the job's results), with each deployment's sheets
        annotated (Type, SuggestedLabel), as ``bdisc discover`` does on one machine."""
        p = message.payload
        round_id = str(p.get("round", ""))
        try:
            output = self._link(p["project"], message.job_id, p["link_groups"], p.get("link"))
        except Exception as exc:
            if is_retryable(exc):
                raise
            error = ": ".join(describe(exc))
            self._event(message, stages.LINK_FAILED, error=error, round=round_id)
            return
        self._event(message, stages.LINKED, output=output, round=round_id)

    def _link(
        self, project: str, job_id: str, groups: list[str], params: dict[str, Any] | None
    ) -> str:
        sheets = (PROTOTYPES_FILE, CLUSTERS_FILE, REVIEW_FILE)
        read: dict[str, bytes] = {}  # the sheets as downloaded
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            out = Path(tmp)
            for group in groups:
                prefix = results_prefix(project, job_id, group)
                for name in sheets:
                    if self.objects.exists(prefix + name):
                        read[prefix + name] = self.objects.get_bytes(prefix + name)
                        (out / group).mkdir(parents=True, exist_ok=True)
                        (out / group / name).write_bytes(read[prefix + name])
            members = link_groups(out, groups, LinkParams.from_dict(params or {}))
            key = job_results_prefix(project, job_id) + SOUND_TYPES_FILE
            self.objects.put_file(key, out / SOUND_TYPES_FILE, content_type="text/csv")
            for group in groups:
                self._put_annotated(
                    out, group, groups, members, read, results_prefix(project, job_id, group)
                )
        log.info(
            "linked",
            extra=fields(job_id=job_id, groups=len(groups), clusters=len(members)),
        )
        return key

    def _put_annotated(
        self,
        out: Path,
        group: str,
        groups: list[str],
        members: list[Member],
        read: dict[str, bytes],
        prefix: str,
    ) -> None:
        """Upload a group's annotated sheets, unless they changed meanwhile: clustered
        again (a newer link round will annotate them), or labelled through the API (the
        new sheet is annotated instead, so no label is lost)."""
        clusters, review = prefix + CLUSTERS_FILE, prefix + REVIEW_FILE
        if clusters not in read or self.objects.get_bytes(clusters) != read[clusters]:
            log.info("sheets changed during linking: left as they are", extra=fields(group=group))
            return
        if review in read:
            now = self.objects.get_bytes(review)
            if now != read[review]:
                (out / group / REVIEW_FILE).write_bytes(now)
                annotate_groups(out, groups, members, only=[group])
            self.objects.put_file(review, out / group / REVIEW_FILE, content_type="text/csv")
        self.objects.put_file(clusters, out / group / CLUSTERS_FILE, content_type="text/csv")

    def _publish_folder(self, folder: Path, prefix: str) -> None:
        """Upload the group's outputs; delete what an earlier run left that this one did
        not write (clustering again after a retry can give fewer clusters)."""
        written = set()
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not f.name.startswith("."):
                key = prefix + f.relative_to(folder).as_posix()
                content_type = CONTENT_TYPES.get(f.suffix, "application/octet-stream")
                self.objects.put_file(key, f, content_type=content_type)
                written.add(key)
        for key in list(self.objects.list(prefix)):
            if key not in written:
                self.objects.delete(key)
