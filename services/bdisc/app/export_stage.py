"""The export stage: a discovery job's reviewed labels -> training clips in the object store.

The same plan and reconciliation as ``bdisc export``, against the bucket. The labels are
those of the label store, sent with the work (clusters, sound types, single windows): the
clips they ask for are kept where they are, relabelled ones are moved (copied
to the new label's folder, the old object deleted), new ones are cut from the recording
(fetched once per recording), and clips of earlier exports that are no longer wanted are
deleted. Only objects listed in the training set's own manifest are ever deleted.

    projects/<p>/jobs/<discovery job>/trainset/<Label>/<folder>__<file>__<start ms>.wav
    projects/<p>/jobs/<discovery job>/trainset/manifest.csv
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from bdisc.app.keys import (
    audio_prefix,
    job_results_prefix,
    relative_to,
    results_prefix,
    trainset_prefix,
)
from bdisc.app.label_sheets import job_labels, write_overrides, write_review_table
from bdisc.app.messages import Event, Exported, ExportWork
from bdisc.app.stage_handler import Routes
from bdisc.app.stored_results import result_folders
from bdisc.discovery.export import (
    MANIFEST,
    Clip,
    ExportConfig,
    ExportReport,
    cut_clip,
    manifest_text,
    plan,
    read_manifest,
    reconcile,
)
from bdisc.discovery.linking import SOUND_TYPES_FILE
from bdisc.discovery.sheets import CLUSTERS_FILE
from bdisc.errors import InternalError, NotFound, describe, is_retryable
from bdisc.logs import fields
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)


class ExportStage:
    def __init__(self, objects: ObjectStore, scratch: Path | None = None) -> None:
        self.objects, self.scratch = objects, scratch

    @property
    def routes(self) -> Routes:
        return {ExportWork: self.export}

    def export(self, job_id: str, work: ExportWork) -> Event:
        report, prefix = self._run(work)
        summary = {
            "clips": report.clips,
            "cut": report.cut,
            "moved": report.moved,
            "kept": report.kept,
            "removed": report.removed,
            "failed": [f"{clip}: {error}" for clip, error in report.failed],
        }
        log.info("exported", extra=fields(job_id=job_id, **summary))
        return Exported(output=prefix + MANIFEST, report=summary)

    def _run(self, work: ExportWork) -> tuple[ExportReport, str]:
        project, job = work.project, work.discovery_job
        prefix = trainset_prefix(project, job)
        prefix_of_job = job_results_prefix(project, job)  # its deployments, and review
        # groups of searches and suggestions, labelled like them
        root = audio_prefix(project)
        sources = {}
        for rec in work.recordings:
            rel = relative_to(root, rec.key)
            group = rec.group
            inside = rel[len(group) + 1 :] if rel.startswith(group + "/") else rel
            sources[(group, inside)] = rec.key
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            folder = Path(tmp)
            results = folder / "results"
            review, overrides = folder / "review.csv", folder / "overrides.csv"
            folders = sorted({*work.groups, *result_folders(self.objects, prefix_of_job)})
            self._fetch_clusters(project, job, folders, results)
            types = results / SOUND_TYPES_FILE
            labels = job_labels(work.labels, folders, types if types.is_file() else None)
            write_review_table(review, labels)
            write_overrides(overrides, labels)
            config = ExportConfig(
                review,
                results,
                folder / "trainset",
                overrides=overrides,
                pad_s=work.options.pad_s,
                sample_rate=work.options.sample_rate,
            )
            wanted = plan(config, sources)
            manifest = prefix + MANIFEST
            previous = (
                read_manifest(self.objects.get_bytes(manifest).decode())
                if self.objects.exists(manifest)
                else []
            )
            report = self._apply(wanted, previous, prefix, folder)
        return report, prefix

    def _fetch_clusters(self, project: str, job: str, groups: list[str], results: Path) -> None:
        """Each deployment's clusters.csv (and the job's sound types)."""
        for group in groups:
            where = results_prefix(project, job, group)
            try:
                self.objects.download(where + CLUSTERS_FILE, results / group / CLUSTERS_FILE)
            except NotFound as exc:
                raise NotFound(f"deployment {group} of job {job} has no results") from exc
        types = job_results_prefix(project, job) + SOUND_TYPES_FILE
        if self.objects.exists(types):
            self.objects.download(types, results / SOUND_TYPES_FILE)

    def _apply(
        self, wanted: list[Clip], previous: list[Clip], prefix: str, work: Path
    ) -> ExportReport:
        present = set(self.objects.list(prefix))
        todo = reconcile(wanted, previous, lambda name: prefix + name in present)
        report = ExportReport(clips=len(wanted), kept=len(todo.keep))
        done = list(todo.keep)
        for old, clip in todo.move:
            self.objects.put_bytes(
                prefix + clip.clip, self.objects.get_bytes(prefix + old), content_type="audio/wav"
            )
            report.moved += 1
            done.append(clip)
        audio, fetched = work / "audio", ""  # one recording on disk at a time
        for clip in sorted(todo.cut, key=lambda c: (c.source, c.start_s)):
            try:
                if clip.source != fetched:
                    shutil.rmtree(audio, ignore_errors=True)
                    fetched = ""
                    self.objects.download(clip.source, audio / PurePosixPath(clip.source).name)
                    fetched = clip.source
                dest = work / "clips" / clip.clip
                cut_clip(clip, audio / PurePosixPath(clip.source).name, dest)
                self.objects.put_file(prefix + clip.clip, dest, content_type="audio/wav")
                dest.unlink()
                report.cut += 1
                done.append(clip)
            except Exception as exc:
                if is_retryable(exc) or isinstance(exc, InternalError):  # not the clip's fault
                    raise
                report.failed.append((clip.clip, ": ".join(describe(exc))))
        for name in todo.remove + [old for old, _ in todo.move]:
            if prefix + name in present:
                self.objects.delete(prefix + name)
                report.removed += name in todo.remove
        self.objects.put_bytes(
            prefix + MANIFEST, manifest_text(done).encode(), content_type="text/csv"
        )
        return report
