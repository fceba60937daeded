"""The ingestion stage: a job's recordings in the object store -> a plan of work items.

Lists the recordings under the job's prefix, applies the subset (time of day and dates
from file names, seeded sampling per deployment; the same ``select`` as ``bdisc
discover``), and probes every kept recording's header through ranged reads (format,
rate, channels, duration; a 2-GB file costs kilobytes). A long recording is planned as
parts of 10 minutes (``pipeline/parts.py``), so that embedding replicas share it. The plan
goes to the orchestrator as one ``Planned`` event: the recordings to embed, and the ones refused
with their reason. A table of every recording is written next to the job's results.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from bdisc.app.keys import audio_prefix, group_of, job_results_prefix, relative_to
from bdisc.app.messages import (
    Event,
    IngestWork,
    PlanFailed,
    Planned,
    PlannedRecording,
    RefusedRecording,
)
from bdisc.app.object_file import open_object
from bdisc.app.stage_handler import Routes
from bdisc.audio.formats import is_audio_path
from bdisc.audio.reader import AudioInfo, probe_file
from bdisc.discovery.recordings import Recording, select, timestamp_from_name
from bdisc.errors import AudioError, NameClash, describe
from bdisc.logs import fields
from bdisc.model.birdnet import SAMPLE_RATE, WINDOW_S
from bdisc.outputs.names import name_clash, name_clashes
from bdisc.pipeline.parts import plan_parts
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)

PLAN_FILE = "recordings.csv"
PLAN_COLUMNS = (
    "path",
    "deployment",
    "status",
    "reason",
    "format",
    "sample_rate",
    "channels",
    "duration_s",
    "timestamp",
)


class IngestStage:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @property
    def routes(self) -> Routes:
        return {IngestWork: self.plan}

    def plan(self, job_id: str, work: IngestWork) -> Event:
        root = audio_prefix(work.project)
        rels = [  # a Retryable (S3 down) propagates: the bus retries
            relative_to(root, key)
            for key in self.objects.list(root + work.prefix)
            if is_audio_path(PurePosixPath(key))
        ]
        found = [
            Recording(
                Path(rel),
                rel,
                group_of(rel),
                rel.split("/", 1)[-1],
                timestamp_from_name(PurePosixPath(rel).name),
            )
            for rel in rels
        ]
        if not found:
            return PlanFailed(error=f"no recordings under {work.prefix!r}")
        kept, report = select(found, work.subset)
        if not kept:
            return PlanFailed(
                error=f"the subset keeps none of the {len(found)} recordings: {report}"
            )
        planned: list[PlannedRecording] = []
        refused: list[RefusedRecording] = []
        rows: list[dict[str, object]] = []
        # as a local run: two recordings whose outputs would share names, the first kept
        clashes = name_clashes(rec.rel for rec in kept)
        for rec in kept:
            key = root + rec.rel
            row: dict[str, object] = {
                "path": rec.rel,
                "deployment": rec.folder,
                "timestamp": rec.timestamp.isoformat() if rec.timestamp else "",
            }
            try:
                if rec.rel in clashes:
                    raise name_clash(rec.rel, clashes[rec.rel])
                info = self._probe(key)
            except (AudioError, NameClash) as exc:
                reason = ": ".join(describe(exc))
                refused.append(RefusedRecording(key=key, group=rec.folder, error=reason))
                rows.append({**row, "status": "refused", "reason": reason})
                continue
            planned += self._parts(key, rec.folder, info, work)
            rows.append(
                {**row, "status": "planned", "reason": "; ".join(info.warnings), **_info(info)}
            )
        manifest = job_results_prefix(work.project, job_id) + PLAN_FILE
        self.objects.put_bytes(manifest, _table(rows), content_type="text/csv")
        log.info(
            "job planned",
            extra=fields(
                job_id=job_id, found=len(found), planned=len(planned), refused=len(refused)
            ),
        )
        return Planned(
            items=tuple(planned),
            refused=tuple(refused),
            subset={k: v for k, v in asdict(report).items() if k != "skipped_files"},
            manifest=manifest,
        )

    def _parts(
        self, key: str, group: str, info: AudioInfo, work: IngestWork
    ) -> list[PlannedRecording]:
        """One item per recording; a long one, one per part (read by ranges, so that
        the embedding replicas share it), named with the object's version."""
        if work.params is None:
            return [PlannedRecording(key=key, group=group)]
        spec = work.params.window_spec(SAMPLE_RATE, WINDOW_S)
        parts = plan_parts(info, spec, work.params.audio_speed)
        if len(parts) == 1:
            return [PlannedRecording(key=key, group=group)]
        version = self.objects.version(key)
        return [
            PlannedRecording(key=key, group=group, first=p.first, count=p.count, version=version)
            for p in parts
        ]

    def _probe(self, key: str) -> AudioInfo:
        size = self.objects.size(key)
        with open_object(self.objects, key, size) as source:
            return probe_file(source, key, size)


def _info(info: AudioInfo) -> dict[str, object]:
    return {
        "format": info.format,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "duration_s": round(info.duration_s, 3),
    }


def _table(rows: list[dict[str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, PLAN_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()
