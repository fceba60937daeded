"""The one writer of job state: fans a job out into work and fans the results back in.

submit   record the job and ask the ingestion stage for a plan (probe, subset).
planned  record one item per planned recording (refused ones as failed, with the reason)
         and publish one embed message each (idempotency key = job + recording).
events   every worker reports here; the orchestrator records it, and when every recording
         of a deployment is settled (done or failed) it publishes that deployment's
         cluster message, once. When every deployment is clustered, one link message
         (a round id in the payload) asks for the sound types; when they are linked,
         the job is done. A retry starts a new round; an older round's outcome is ignored.
A restarted orchestrator loses nothing: the state is in the JobStore and unprocessed
events wait in their queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from bdisc.app import stages
from bdisc.app.keys import audio_prefix, relative_to
from bdisc.errors import NotFound
from bdisc.logs import fields
from bdisc.pipeline.params import AnalysisParams
from bdisc.ports.job_store import FINAL, JobRecord, JobStore
from bdisc.ports.message_bus import Message, MessageBus
from bdisc.ports.object_store import ObjectStore

log = logging.getLogger(__name__)

PLAN_ITEM = "plan"


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
        *,
        subset: dict[str, Any] | None = None,
        prune: dict[str, Any] | None = None,
        review: dict[str, Any] | None = None,
        link: dict[str, Any] | None = None,
    ) -> str:
        """Record a discovery job and ask ingestion to plan it; the parameters are those of
        ``bdisc discover`` (checked by the caller)."""
        job_id = job_id or uuid.uuid4().hex
        job_params = {
            "analysis": params.as_dict(),
            "cluster": cluster or {},
            "prefix": prefix,
            "subset": subset or {},
            "prune": prune or {},
            "review": review or {},
            "link": link or {},
        }
        created = self.jobs.create_job(
            job_id, project, "discover", job_params, [(PLAN_ITEM, PLAN_ITEM)], stages.INGEST
        )
        if created or self.jobs.items(job_id, stages.INGEST)[0].status == "pending":
            # again when redelivered before planning: the first publish may have been lost
            self.bus.publish(
                Message(
                    stages.INGEST,
                    job_id,
                    f"{job_id}:ingest",
                    {"project": project, "prefix": prefix, "subset": subset or {}},
                )
            )
            self.jobs.set_job_status(job_id, "running")
            log.info("job submitted", extra=fields(job_id=job_id, prefix=prefix))
        return job_id

    def _planned(self, job_id: str, p: dict[str, Any]) -> None:
        """Ingestion's plan: one embed item per planned recording, refused ones failed."""
        job = self.jobs.job(job_id)
        again = self.jobs.items(job_id, stages.INGEST)[0].status in FINAL
        self.jobs.add_items(
            job_id,
            stages.EMBED,
            [(key, group, "pending", "") for key, group in p["items"]]
            + [(key, group, "failed", error) for key, group, error in p["refused"]],
        )
        if again:  # redelivered: only what may not have been sent
            pending = {
                i.key for i in self.jobs.items(job_id, stages.EMBED) if i.status == "pending"
            }
        else:
            pending = {key for key, _ in p["items"]}
        if job.status != "cancelled":
            for key, group in p["items"]:
                if key in pending:
                    self.bus.publish(self._embed_message(job, key, group))
        self.jobs.set_item(
            job_id, PLAN_ITEM, stages.INGEST, "done", group=PLAN_ITEM, output=p["manifest"]
        )
        log.info(
            "job planned",
            extra=fields(job_id=job_id, planned=len(p["items"]), refused=len(p["refused"])),
        )
        for group in sorted({group for _, group, _ in p["refused"]}):
            self._maybe_cluster(job_id, group)  # a deployment whose files were all refused

    def _embed_message(self, job: JobRecord, key: str, group: str, suffix: str = "") -> Message:
        return Message(
            stages.EMBED,
            job.id,
            f"{job.id}:{key}{suffix}",
            {
                "project": job.project,
                "audio_key": key,
                "rel": relative_to(audio_prefix(job.project), key),
                "group": group,
                "params": job.params["analysis"],
            },
        )

    def handle_event(self, message: Message) -> None:
        p, job_id = message.payload, message.job_id
        kind = p["kind"]
        if kind == stages.SUBMIT_DISCOVERY:
            self._submit_command(job_id, p)
        elif kind == stages.PLANNED:
            self._planned(job_id, p)
        elif kind == stages.PLAN_FAILED:
            self.jobs.set_item(
                job_id, PLAN_ITEM, stages.INGEST, "failed", group=PLAN_ITEM, error=p["error"]
            )
            self.jobs.set_job_status(job_id, "failed", error=p["error"])
            self._notify(job_id)
        elif kind == stages.SUBMIT_EVALUATION:
            self.submit_evaluation(job_id, p)
        elif kind == stages.SUBMIT_EXPORT:
            self.submit_export(job_id, p)
        elif kind in (stages.EVALUATED, stages.EVALUATE_FAILED):
            self._single_item_settled(job_id, stages.EVALUATE, kind == stages.EVALUATED, p)
        elif kind in (stages.EXPORTED, stages.EXPORT_FAILED):
            self._single_item_settled(job_id, stages.EXPORT, kind == stages.EXPORTED, p)
        elif kind == stages.RETRY_FAILED:
            self.retry_failed(job_id)
        elif kind == stages.CANCEL:
            self.jobs.set_job_status(job_id, "cancelled")
            self._notify(job_id)
        elif kind in (stages.EMBEDDED, stages.EMBED_FAILED):
            self._settle(job_id, p["key"], stages.EMBED, kind == stages.EMBEDDED, p)
            self._maybe_cluster(job_id, p["group"])
        elif kind in (stages.CLUSTERED, stages.CLUSTER_FAILED):
            self._settle(job_id, p["group"], stages.CLUSTER, kind == stages.CLUSTERED, p)
            self._maybe_finish(job_id)
        elif kind in (stages.LINKED, stages.LINK_FAILED):
            self._linked(job_id, kind == stages.LINKED, p)
        else:
            log.warning("unknown event", extra=fields(job_id=job_id, kind=kind))

    def _submit_command(self, job_id: str, p: dict[str, Any]) -> None:
        """A job asked for through the gateway: the same submission, recorded here so that
        the orchestrator stays the only writer of job state."""
        self.submit_discovery(
            p["project"],
            AnalysisParams.from_dict(p["analysis"]),
            p.get("cluster") or {},
            p.get("prefix", ""),
            job_id=job_id,
            subset=p.get("subset"),
            prune=p.get("prune"),
            review=p.get("review"),
            link=p.get("link"),
        )

    def submit_evaluation(self, job_id: str, request: dict[str, Any]) -> None:
        """An evaluation job: one item, run by the evaluation service."""
        self._single_item_job(job_id, "evaluate", stages.EVALUATE, request)

    def submit_export(self, job_id: str, request: dict[str, Any]) -> None:
        """An export job: the reviewed labels of a finished discovery job -> training clips
        (one item, run by the export service). Its recordings and deployments go with it."""
        source = request["discovery_job"]
        try:
            discovery = self.jobs.job(source)
        except NotFound:
            discovery = None
        if (
            discovery is None
            or discovery.project != request["project"]
            or (discovery.kind != "discover")
        ):
            self._refuse(job_id, "export", request, f"no discovery job {source}")
            return
        clustered = [i.group for i in self.jobs.items(source, stages.CLUSTER) if i.status == "done"]
        if discovery.status not in FINAL or not clustered:
            error = f"discovery job {source} is {discovery.status}, with no clusters to export"
            self._refuse(job_id, "export", request, error)
            return
        embedded = [i for i in self.jobs.items(source, stages.EMBED) if i.status == "done"]
        request = {
            **request,
            "groups": sorted(clustered),
            "recordings": [[i.key, i.group] for i in embedded],
        }
        self._single_item_job(job_id, "export", stages.EXPORT, request)

    def _refuse(self, job_id: str, kind: str, request: dict[str, Any], error: str) -> None:
        """A job that cannot start: recorded as failed, with the reason."""
        if self.jobs.create_job(job_id, request["project"], kind, dict(request), [], kind):
            self.jobs.set_job_status(job_id, "failed", error=error)
            self._notify(job_id)

    def _single_item_job(self, job_id: str, kind: str, stage: str, request: dict[str, Any]) -> None:
        if (
            self.jobs.create_job(
                job_id, request["project"], kind, dict(request), [(stage, stage)], stage
            )
            or self.jobs.job(job_id).status == "queued"
        ):
            self.bus.publish(Message(stage, job_id, f"{job_id}:{stage}", request))
            self.jobs.set_job_status(job_id, "running")

    def _settle(self, job_id: str, key: str, stage: str, ok: bool, p: dict[str, Any]) -> None:
        """Record a worker's outcome for one item (its output, or its error)."""
        self.jobs.set_item(
            job_id,
            key,
            stage,
            "done" if ok else "failed",
            group=p.get("group", stage),
            output=p.get("output", ""),
            error=p.get("error", ""),
        )

    def _single_item_settled(self, job_id: str, stage: str, ok: bool, p: dict[str, Any]) -> None:
        self._settle(job_id, stage, stage, ok, p)
        self.jobs.set_job_status(job_id, "done" if ok else "failed", error=p.get("error", ""))
        self._notify(job_id)

    def retry_failed(self, job_id: str) -> list[str]:
        """Failed recordings of a job go through embedding again; their deployments are
        clustered again once they are settled (with whatever now embeds)."""
        job = self.jobs.job(job_id)
        groups = {i.key: i.group for i in self.jobs.items(job_id, stages.EMBED)}
        keys = self.jobs.reset_failed(job_id, stages.EMBED)
        retried = sorted({groups[k] for k in keys})
        self.jobs.discard_items(job_id, stages.CLUSTER, retried)
        link = self.jobs.items(job_id, stages.LINK)
        if retried or (link and link[0].status == "failed"):
            # linked again once the deployments are clustered again (a link in flight
            # now belongs to an older round, and its outcome is ignored)
            self.jobs.discard_items(job_id, stages.LINK, [stages.LINK_ITEM])
            if not retried:
                self.jobs.set_job_status(job_id, "running")
                self._maybe_finish(job_id)
        for key in keys:
            self.bus.publish(self._embed_message(job, key, groups[key], ":retry"))
        if keys:
            self.jobs.set_job_status(job_id, "running")
            log.info("retrying", extra=fields(job_id=job_id, recordings=len(keys), groups=retried))
        return keys

    def _maybe_cluster(self, job_id: str, group: str) -> None:
        if not self.jobs.group_settled(job_id, stages.EMBED, group):
            return
        if self.jobs.job(job_id).status == "cancelled":
            return
        asked = self.jobs.items(job_id, stages.CLUSTER, group)
        if asked and asked[0].status != "pending":
            return  # clustered already (a redelivered event)
        if not asked:
            self.jobs.set_item(job_id, group, stages.CLUSTER, "pending", group=group)
        # else: redelivered while pending. The first publish may have been lost with a
        # killed orchestrator (state committed, message not sent): send it again; the
        # clustering of a group is idempotent and its outcome settles once.
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
                    "prune": job.params.get("prune", {}),
                    "review": job.params.get("review", {}),
                },
            )
        )
        log.info(
            "deployment ready to cluster",
            extra=fields(job_id=job_id, group=group, recordings=len(embedded)),
        )

    def _maybe_finish(self, job_id: str) -> None:
        """When every deployment is clustered: link them into sound types (the fan-in
        step, once), then end the job."""
        if self.jobs.job(job_id).status == "cancelled":
            return
        groups = {i.group for i in self.jobs.items(job_id, stages.EMBED)}
        clustered = {i.group: i.status for i in self.jobs.items(job_id, stages.CLUSTER)}
        if not (groups <= set(clustered) and all(s in FINAL for s in clustered.values())):
            return
        done = sorted(g for g, s in clustered.items() if s == "done")
        linked = self.jobs.items(job_id, stages.LINK)
        if done and (not linked or linked[0].status == "pending"):
            self._link(self.jobs.job(job_id), done, linked[0].output if linked else "")
            return
        failed = sorted(g for g, s in clustered.items() if s == "failed")
        errors = [f"clustering failed for {', '.join(failed)}"] if failed else []
        if linked and linked[0].status == "failed":
            errors.append(f"linking sound types failed: {linked[0].error}")
        self.jobs.set_job_status(job_id, "failed" if errors else "done", error="; ".join(errors))
        self._notify(job_id)

    def _link(self, job: JobRecord, groups: list[str], round_id: str) -> None:
        """Ask for the link step. A new round gets an id, kept in the pending item; a
        redelivered event republishes the same round (the first publish may have been
        lost; the step is idempotent)."""
        if not round_id:
            round_id = uuid.uuid4().hex[:12]
            self.jobs.set_item(
                job.id, stages.LINK_ITEM, stages.LINK, "pending", group="", output=round_id
            )
        self.bus.publish(
            Message(
                stages.CLUSTER,
                job.id,
                f"{job.id}:link:{round_id}",
                {
                    "project": job.project,
                    "group": stages.LINK_ITEM,
                    "link_groups": groups,
                    "link": job.params.get("link", {}),
                    "round": round_id,
                },
            )
        )
        log.info("deployments ready to link", extra=fields(job_id=job.id, groups=len(groups)))

    def _linked(self, job_id: str, ok: bool, p: dict[str, Any]) -> None:
        """The link step's outcome, if it is the current round's (a round started before
        a retry, or redelivered after it settled, is ignored)."""
        current = self.jobs.items(job_id, stages.LINK)
        if not current or current[0].status != "pending" or current[0].output != p.get("round"):
            log.info("outcome of an older link round ignored", extra=fields(job_id=job_id))
            return
        self._settle(job_id, stages.LINK_ITEM, stages.LINK, ok, {**p, "group": ""})
        self._maybe_finish(job_id)

    def _notify(self, job_id: str) -> None:
        if self.notify is not None:
            self.notify(self.jobs.job(job_id), self.jobs.progress(job_id))
