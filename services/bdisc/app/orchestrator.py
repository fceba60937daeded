"""The one writer of job state: fans a job out into work and fans the results back in.

submit   list the recordings under the job's audio prefix, record one item per recording
         and publish one embed message each (idempotency key = job + recording).
events   every worker reports here; the orchestrator records it, and when every recording
         of a deployment is settled (done or failed) it publishes that deployment's
         cluster message, once. When every deployment is clustered, the job is done.
A restarted orchestrator loses nothing: the state is in the JobStore and unprocessed
events wait in their queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from bdisc.app import stages
from bdisc.app.keys import audio_prefix, group_of, relative_to
from bdisc.audio.formats import is_audio_path
from bdisc.errors import NotFound
from bdisc.logs import fields
from bdisc.pipeline.params import AnalysisParams
from bdisc.ports.job_store import FINAL, JobRecord, JobStore
from bdisc.ports.message_bus import Message, MessageBus
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)

EVALUATION_ITEM = "evaluation"


class Orchestrator:
    def __init__(
        self,
        jobs: JobStore,
        bus: MessageBus,
        objects: ObjectStore,
        notify: Callable[[JobRecord, dict[str, Any]], object] | None = None,
    ) -> None:
        self.jobs, self.bus, self.objects = jobs, bus, objects
        self.notify = notify  # e.g. a WebhookNotifier: told when a job ends

    def submit_discovery(
        self,
        project: str,
        params: AnalysisParams,
        cluster: dict[str, Any] | None = None,
        prefix: str = "",
        job_id: str | None = None,
    ) -> str:
        root = audio_prefix(project)
        keys = [k for k in self.objects.list(root + prefix) if is_audio_path(PurePosixPath(k))]
        if not keys:
            raise NotFound(f"no recordings under {root + prefix}", project=project)
        job_id = job_id or uuid.uuid4().hex
        items = [(k, group_of(relative_to(root, k))) for k in keys]
        job_params = {"analysis": params.as_dict(), "cluster": cluster or {}, "prefix": prefix}
        if self.jobs.create_job(job_id, project, "discover", job_params, items, stages.EMBED):
            for key, group in items:
                self.bus.publish(
                    Message(
                        stages.EMBED,
                        job_id,
                        f"{job_id}:{key}",
                        {
                            "project": project,
                            "audio_key": key,
                            "rel": relative_to(root, key),
                            "group": group,
                            "params": params.as_dict(),
                        },
                    )
                )
            self.jobs.set_job_status(job_id, "running")
            log.info("job submitted", extra=fields(job_id=job_id, recordings=len(items)))
        return job_id

    def handle_event(self, message: Message) -> None:
        p, job_id = message.payload, message.job_id
        kind = p["kind"]
        if kind == stages.SUBMIT_DISCOVERY:
            self._submit_command(job_id, p)
        elif kind == stages.SUBMIT_EVALUATION:
            self.submit_evaluation(job_id, p)
        elif kind in (stages.EVALUATED, stages.EVALUATE_FAILED):
            ok = kind == stages.EVALUATED
            self.jobs.set_item(
                job_id,
                EVALUATION_ITEM,
                stages.EVALUATE,
                "done" if ok else "failed",
                group=EVALUATION_ITEM,
                output=p.get("output", ""),
                error=p.get("error", ""),
            )
            self.jobs.set_job_status(job_id, "done" if ok else "failed", error=p.get("error", ""))
            self._notify(job_id)
        elif kind == stages.RETRY_FAILED:
            self.retry_failed(job_id)
        elif kind == stages.CANCEL:
            self.jobs.set_job_status(job_id, "cancelled")
            self._notify(job_id)
        elif kind in (stages.EMBEDDED, stages.EMBED_FAILED):
            ok = kind == stages.EMBEDDED
            self.jobs.set_item(
                job_id,
                p["key"],
                stages.EMBED,
                "done" if ok else "failed",
                group=p["group"],
                output=p.get("output", ""),
                error=p.get("error", ""),
            )
            self._maybe_cluster(job_id, p["group"])
        elif kind in (stages.CLUSTERED, stages.CLUSTER_FAILED):
            ok = kind == stages.CLUSTERED
            self.jobs.set_item(
                job_id,
                p["group"],
                stages.CLUSTER,
                "done" if ok else "failed",
                group=p["group"],
                output=p.get("output", ""),
                error=p.get("error", ""),
            )
            self._maybe_finish(job_id)
        else:
            log.warning("unknown event", extra=fields(job_id=job_id, kind=kind))

    def _submit_command(self, job_id: str, p: dict[str, Any]) -> None:
        """A job asked for through the gateway: the same submission, recorded here so that
        the orchestrator stays the only writer of job state."""
        try:
            self.submit_discovery(
                p["project"],
                AnalysisParams.from_dict(p["analysis"]),
                p.get("cluster") or {},
                p.get("prefix", ""),
                job_id=job_id,
            )
        except NotFound as exc:
            self.jobs.create_job(job_id, p["project"], "discover", dict(p), [], stages.EMBED)
            self.jobs.set_job_status(job_id, "failed", error=exc.message)
            self._notify(job_id)

    def submit_evaluation(self, job_id: str, request: dict[str, Any]) -> None:
        """An evaluation job: one item, run by the evaluation service."""
        if self.jobs.create_job(
            job_id,
            request["project"],
            "evaluate",
            dict(request),
            [(EVALUATION_ITEM, EVALUATION_ITEM)],
            stages.EVALUATE,
        ):
            self.bus.publish(Message(stages.EVALUATE, job_id, f"{job_id}:evaluate", request))
            self.jobs.set_job_status(job_id, "running")

    def retry_failed(self, job_id: str) -> list[str]:
        """Failed recordings of a job go through embedding again."""
        job = self.jobs.job(job_id)
        keys = self.jobs.reset_failed(job_id, stages.EMBED)
        root = audio_prefix(job.project)
        for key in keys:
            group = group_of(relative_to(root, key))
            self.bus.publish(
                Message(
                    stages.EMBED,
                    job_id,
                    f"{job_id}:{key}:retry",
                    {
                        "project": job.project,
                        "audio_key": key,
                        "rel": relative_to(root, key),
                        "group": group,
                        "params": job.params["analysis"],
                    },
                )
            )
        if keys:
            self.jobs.set_job_status(job_id, "running")
        return keys

    def _maybe_cluster(self, job_id: str, group: str) -> None:
        if not self.jobs.group_settled(job_id, stages.EMBED, group):
            return
        if self.jobs.job(job_id).status == "cancelled":
            return
        if self.jobs.items(job_id, stages.CLUSTER, group):
            return  # already asked for (a redelivered event)
        self.jobs.set_item(job_id, group, stages.CLUSTER, "pending", group=group)
        embedded = [
            i.output for i in self.jobs.items(job_id, stages.EMBED, group) if i.status == "done"
        ]
        job = self.jobs.job(job_id)
        self.bus.publish(
            Message(
                stages.CLUSTER,
                job_id,
                f"{job_id}:cluster:{group}",
                {
                    "project": job.project,
                    "group": group,
                    "embeddings": embedded,
                    "cluster": job.params.get("cluster", {}),
                },
            )
        )
        log.info(
            "deployment ready to cluster",
            extra=fields(job_id=job_id, group=group, recordings=len(embedded)),
        )

    def _maybe_finish(self, job_id: str) -> None:
        groups = {i.group for i in self.jobs.items(job_id, stages.EMBED)}
        clustered = {i.group: i.status for i in self.jobs.items(job_id, stages.CLUSTER)}
        if groups <= set(clustered) and all(s in FINAL for s in clustered.values()):
            failed = sorted(g for g, s in clustered.items() if s == "failed")
            self.jobs.set_job_status(
                job_id,
                "failed" if failed else "done",
                error=f"clustering failed for {', '.join(failed)}" if failed else "",
            )
            self._notify(job_id)

    def _notify(self, job_id: str) -> None:
        if self.notify is not None:
            self.notify(self.jobs.job(job_id), self.jobs.progress(job_id))
