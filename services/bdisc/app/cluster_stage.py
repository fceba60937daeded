"""The clustering stage: one deployment's embeddings (in the object store) -> clusters,
review sheet, montages, map and page under the job's results prefix.

Runs the same per-group function as ``bdisc discover``. Montage tiles and snippets are
cut from the recordings by ranged reads: only their spans are fetched.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from bdisc.app.keys import audio_prefix, job_results_prefix, results_prefix
from bdisc.app.messages import (
    Clustered,
    ClusterMove,
    ClusterWork,
    Event,
    Linked,
    LinkWork,
)
from bdisc.app.object_file import open_object
from bdisc.app.publish import publish_folder
from bdisc.app.stage_handler import Routes
from bdisc.audio.segments import read_segment
from bdisc.discovery.exclude import excluded, read_exclusions
from bdisc.discovery.linking import (
    PROTOTYPES_FILE,
    SOUND_TYPES_FILE,
    LinkParams,
    Member,
    annotate_groups,
    link_groups,
)
from bdisc.discovery.relabel import match_clusters
from bdisc.discovery.review_outputs import cluster_group, group_settings
from bdisc.discovery.sheets import CLUSTERS_FILE, REVIEW_FILE, read_clusters
from bdisc.discovery.windows import Windows, prune_windows, windows_from_files
from bdisc.logs import fields
from bdisc.ports.object_store import ObjectStore
from bdisc.search.duplicate_sheet import EXCLUDE_FILE

log = logging.getLogger(__name__)


class ClusterStage:
    def __init__(self, objects: ObjectStore, scratch: Path | None = None) -> None:
        self.objects, self.scratch = objects, scratch

    @property
    def routes(self) -> Routes:
        return {ClusterWork: self.cluster, LinkWork: self.link}

    def cluster(self, job_id: str, work: ClusterWork) -> Event:
        if not work.recordings:
            return work.failed("no recording of this deployment could be embedded")
        spec, group = work.spec, work.group
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            root = Path(tmp)
            files, where = [], {}
            # a long recording's parts, in order, make up its windows
            ordered = sorted(work.recordings, key=lambda r: (r.rel, r.first))
            for i, rec in enumerate(ordered):
                local = root / "embeddings" / f"{i:06d}.parquet"
                self.objects.download(rec.embeddings, local)
                files.append(local)
                where[rec.rel] = (group, rec.rel.split("/", 1)[-1])

            def read_span(rel: str, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
                # ranged reads: montage tiles fetch their 3 s, not the recordings
                with open_object(self.objects, audio_prefix(work.project) + rel) as source:
                    return read_segment(source, start_s, end_s)

            windows, provenance = windows_from_files(files, where)
            listed, left_out = self._leave_out(work, windows, root)
            kept, removed = prune_windows(listed, spec.prune)
            if spec.exclude_duplicates is not None:
                removed = {"excluded": left_out, **removed}
            options = spec.group_options
            settings = {
                **group_settings(options, spec.prune, removed, provenance),
                "job_id": job_id,
            }
            out = root / "out" / group
            result = cluster_group(group, kept, out, settings, read_span, options)
            prefix = results_prefix(work.project, job_id, group)
            moves = self._moves(work, prefix, out / CLUSTERS_FILE, root / "previous.csv")
            publish_folder(self.objects, out, prefix)
        log.info(
            "clustered",
            extra=fields(
                job_id=job_id, group=group, clusters=result.clusters, windows=result.windows
            ),
        )
        return Clustered(group=group, output=prefix, moves=moves)

    def _leave_out(self, work: ClusterWork, windows: Windows, root: Path) -> tuple[Windows, int]:
        """The windows outside the copies a duplicates job listed (``bdisc discover
        --exclude``), and how many were left out."""
        dup_id = work.spec.exclude_duplicates
        if dup_id is None:
            return windows, 0
        listed = root / EXCLUDE_FILE
        self.objects.download(job_results_prefix(work.project, dup_id) + EXCLUDE_FILE, listed)
        out = excluded(windows.rel, windows.start, windows.end, read_exclusions(listed))
        return windows.take(~out), int(out.sum())

    def _moves(
        self, work: ClusterWork, prefix: str, clusters: Path, previous: Path
    ) -> tuple[ClusterMove, ...]:
        """Clustered again (a retry, a redelivery): where each earlier cluster went, so
        that the orchestrator can carry its labels."""
        if not self.objects.exists(prefix + CLUSTERS_FILE):
            return ()
        self.objects.download(prefix + CLUSTERS_FILE, previous)
        rel_of = {(work.group, r.rel.split("/", 1)[-1]): r.rel for r in work.recordings}

        def windows(path: Path) -> dict[tuple[str, float, float], int]:
            return {
                (rel_of.get((w.folder, w.file), f"{w.folder}/{w.file}"), w.start_s, w.end_s): (
                    w.cluster
                )
                for w in read_clusters(path)
            }

        moves = match_clusters(windows(previous), windows(clusters))
        return tuple(
            ClusterMove(old=m.old, new=m.new, overlap=m.overlap, windows=m.windows) for m in moves
        )

    def link(self, job_id: str, work: LinkWork) -> Event:
        """The fan-in step: every clustered deployment's prototypes -> sound types
        (``sound_types.csv`` under the job's results), with each deployment's sheets
        annotated (Type, SuggestedLabel), as ``bdisc discover`` does on one machine."""
        output = self._link(work.project, job_id, list(work.groups), work.link)
        return Linked(round=work.round, output=output)

    def _link(self, project: str, job_id: str, groups: list[str], params: LinkParams) -> str:
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
            members = link_groups(out, groups, params)
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
