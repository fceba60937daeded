"""The clustering stage: one deployment's embeddings (in the object store) -> clusters,
review sheet, montages, map and page under the job's results prefix.

Runs the same per-group function as ``bdisc discover``. The recordings are fetched too,
because montage tiles and snippets are cut from them.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from bdisc.app import stages
from bdisc.app.keys import audio_prefix, results_prefix
from bdisc.discovery.api import DiscoverConfig, cluster_group, windows_from_files
from bdisc.discovery.clustering import ClusterParams
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
        group = message.payload["group"]
        self.bus.publish(
            Message(
                stages.EVENTS,
                message.job_id,
                f"{message.idempotency_key}:{kind}",
                {"kind": kind, "group": group, **extra},
            )
        )

    def handle(self, message: Message) -> None:
        p = message.payload
        project, group = p["project"], p["group"]
        if not p["embeddings"]:
            self._event(
                message,
                stages.CLUSTER_FAILED,
                error="no recording of this deployment could be embedded",
            )
            return
        try:
            prefix = self._run(message, project, group, p["embeddings"], p.get("cluster", {}))
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
        cluster: dict[str, Any],
    ) -> str:
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            root = Path(tmp)
            files, where, paths = [], {}, {}
            for i, key in enumerate(keys):
                local = root / "embeddings" / f"{i:06d}.parquet"
                self.objects.download(key, local)
                rel = file_metadata(local)["recording"]["path"]
                audio = root / "audio" / rel
                self.objects.download(audio_prefix(project) + rel, audio)
                files.append(local)
                where[rel] = (group, rel.split("/", 1)[-1])
                paths[rel] = audio
            windows, provenance = windows_from_files(files, where)
            config = DiscoverConfig(
                root / "audio", root / "out", cluster=ClusterParams(**cluster), progress=False
            )
            settings = {
                "cluster": config.cluster.as_dict(),
                "embedding": provenance,
                "job_id": message.job_id,
            }
            result = cluster_group(group, windows, root / "out" / group, settings, paths, config)
            prefix = results_prefix(project, message.job_id, group)
            for f in sorted((root / "out" / group).rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    self.objects.put_file(
                        prefix + f.relative_to(root / "out" / group).as_posix(),
                        f,
                        content_type=CONTENT_TYPES.get(f.suffix, "application/octet-stream"),
                    )
        log.info(
            "clustered",
            extra=fields(
                job_id=message.job_id, group=group, clusters=result.clusters, windows=result.windows
            ),
        )
        return prefix
