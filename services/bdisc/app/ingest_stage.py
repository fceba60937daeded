"""The ingestion stage: a job's recordings in the object store -> a plan of work items.

Lists the recordings under the job's prefix, applies the subset (time of day and dates
from file names, seeded sampling per deployment; the same ``select`` as ``bdisc
discover``), and probes every kept recording's header through ranged reads (format,
rate, channels, duration; a 2-GB file costs kilobytes). The plan goes to the
orchestrator as one ``planned`` event: the recordings to embed, and the ones refused
with their reason. A table of every recording is written next to the job's results.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from bdisc.adapters.object_file import open_object
from bdisc.app import stages
from bdisc.app.events import report_event
from bdisc.app.keys import audio_prefix, group_of, job_results_prefix, relative_to
from bdisc.audio.formats import is_audio_path
from bdisc.audio.reader import AudioInfo, probe_file
from bdisc.discovery.recordings import Recording, Subset, select, timestamp_from_name
from bdisc.errors import AudioError, describe
from bdisc.logs import fields
from bdisc.ports.message_bus import Message, MessageBus
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
    def __init__(self, objects: ObjectStore, bus: MessageBus) -> None:
        self.objects, self.bus = objects, bus

    def handle(self, message: Message) -> None:
        p = message.payload
        project, prefix = p["project"], p.get("prefix", "")
        root = audio_prefix(project)
        rels = [  # a Retryable (S3 down) propagates: the bus retries
            relative_to(root, key)
            for key in self.objects.list(root + prefix)
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
            error = f"no recordings under {prefix!r}"
            report_event(self.bus, message, stages.PLAN_FAILED, error=error)
            return
        kept, report = select(found, Subset.from_dict(p.get("subset") or {}))
        if not kept:
            error = f"the subset keeps none of the {len(found)} recordings: {report}"
            report_event(self.bus, message, stages.PLAN_FAILED, error=error)
            return
        planned: list[list[str]] = []
        refused: list[list[str]] = []
        rows: list[dict[str, object]] = []
        for rec in kept:
            key = root + rec.rel
            row: dict[str, object] = {
                "path": rec.rel,
                "deployment": rec.folder,
                "timestamp": rec.timestamp.isoformat() if rec.timestamp else "",
            }
            try:
                info = self._probe(key)
            except AudioError as exc:
                reason = ": ".join(describe(exc))
                refused.append([key, rec.folder, reason])
                rows.append({**row, "status": "refused", "reason": reason})
                continue
            planned.append([key, rec.folder])
            rows.append(
                {**row, "status": "planned", "reason": "; ".join(info.warnings), **_info(info)}
            )
        manifest = job_results_prefix(project, message.job_id) + PLAN_FILE
        self.objects.put_bytes(manifest, _table(rows), content_type="text/csv")
        log.info(
            "job planned",
            extra=fields(
                job_id=message.job_id, found=len(found), planned=len(planned), refused=len(refused)
            ),
        )
        report_event(
            self.bus,
            message,
            stages.PLANNED,
            items=planned,
            refused=refused,
            subset={k: v for k, v in asdict(report).items() if k != "skipped_files"},
            manifest=manifest,
        )

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
