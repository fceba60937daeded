"""The one writer of job state: fans a job out into work and fans the results back in.

Every hop is one typed message of ``messages.py`` and one method here:

SubmitDiscovery  record the job; IngestWork asks the ingestion stage for a plan.
Planned          one embed item per planned recording (refused ones failed, with the
                 reason), pending; a project's pending items go out as EmbedWork a few
                 at a time, as slots free (``embed_dispatch.py``: fair to every project).
Embedded / EmbedFailed
                 when every recording of a deployment is settled (done or failed), its
                 ClusterWork goes out, once.
Clustered / ClusterFailed
                 when every deployment is clustered, one LinkWork (a round id) asks for
                 the sound types.
Linked / LinkFailed
                 the job ends. A retry starts a new round; an older round's outcome is
                 ignored.
SubmitExport / SubmitEvaluation -> ExportWork / EvaluateWork -> their outcome ends the job.
SubmitTraining / SubmitClassify / SubmitSearch / SubmitDuplicates / SubmitSuggest
                 a job over a finished discovery job's stored results (its embedded
                 recordings, clustered deployments and labels): one item of the
                 training stage, whose outcome ends the job.
RetryFailed, Cancel, WorkUnreadable (a dead letter that is no longer work).

A restarted orchestrator loses nothing: the state is in the JobStore and unprocessed
events wait in their queue.

``handle_events`` settles a batch of events in one unit of work of the JobStore (one
transaction); the bus sends what they published once it returned, then acknowledges
them. A batch that raises is handled again one event at a time, so every handler stays
idempotent and re-publishes work that may not have been sent (a crash between commit
and publish). Webhooks hear of a job's end after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bdisc import tracing
from bdisc.app import stages
from bdisc.app.cancel_marks import CancelMarks
from bdisc.app.embed_dispatch import DispatchCap, top_up
from bdisc.app.job_records import (
    DISCOVER,
    DUPLICATES,
    PLAN_ITEM,
    TRAIN,
    SingleItem,
    record_submission,
)
from bdisc.app.keys import (
    audio_prefix,
    job_results_prefix,
    models_prefix,
    relative_to,
    review_group,
)
from bdisc.app.messages import (
    CONTRACT,
    Cancel,
    ClassifyWork,
    Clustered,
    ClusterFailed,
    ClusterWork,
    Contract,
    Done,
    DuplicatesWork,
    Embedded,
    EmbeddedRecording,
    EmbedFailed,
    EmbedWork,
    Evaluated,
    EvaluateFailed,
    EvaluateWork,
    Event,
    Exported,
    ExportFailed,
    ExportWork,
    Failed,
    IngestWork,
    Linked,
    LinkFailed,
    LinkWork,
    PlanFailed,
    Planned,
    PlannedRecording,
    Reported,
    RetryFailed,
    SearchWork,
    SheetLabel,
    StoredResults,
    SubmitClassify,
    SubmitDiscovery,
    SubmitDuplicates,
    SubmitEvaluation,
    SubmitExport,
    SubmitOnResults,
    SubmitSearch,
    SubmitSuggest,
    SubmitTraining,
    SuggestWork,
    TrainingFailed,
    TrainWork,
    Work,
    WorkUnreadable,
    read,
    to_message,
)
from bdisc.app.review_labels import render_review
from bdisc.discovery.carry_labels import carry_labels
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.discovery.relabel import Move
from bdisc.errors import NotFound, describe, is_retryable
from bdisc.logs import fields, job_context
from bdisc.ports.job_store import FINAL, ItemRecord, JobRecord, JobStore
from bdisc.ports.label_store import LabelStore
from bdisc.ports.message_bus import MalformedMessage, Message, MessageBus
from bdisc.ports.object_store import ObjectStore
from bdisc.search.duplicate_sheet import EXCLUDE_FILE

log = logging.getLogger(__name__)


class Orchestrator:
    def __init__(
        self,
        jobs: JobStore,
        bus: MessageBus,
        objects: ObjectStore,
        notify: Callable[[JobRecord, dict[str, Any]], object] | None = None,
        *,
        labels: LabelStore,
        embed_cap: Callable[[], int] | None = None,
    ) -> None:
        self.jobs, self.bus, self.objects, self.labels = jobs, bus, objects, labels
        self.notify = notify  # e.g. a WebhookNotifier: told when a job ends
        # a project's embed items in flight at most (``embed_dispatch.py``)
        self.embed_cap: Callable[[], int] = embed_cap or DispatchCap()
        self._ended: list[tuple[JobRecord, dict[str, dict[str, int]]]] | None = None
        self._routes: Mapping[type[Contract], Callable[[str, Any], object]] = {
            SubmitDiscovery: self.submit_discovery,
            SubmitExport: self.submit_export,
            SubmitEvaluation: self.submit_evaluation,
            SubmitTraining: self.submit_on_results,
            SubmitClassify: self.submit_on_results,
            SubmitSearch: self.submit_on_results,
            SubmitDuplicates: self.submit_on_results,
            SubmitSuggest: self.submit_on_results,
            RetryFailed: lambda job_id, _: self.retry_failed(job_id),
            Cancel: self._cancel,
            Planned: self._planned,
            PlanFailed: self._plan_failed,
            Embedded: self._embedded,
            EmbedFailed: self._embedded,
            Clustered: self._clustered,
            ClusterFailed: self._clustered,
            Linked: self._linked,
            LinkFailed: self._linked,
            **dict.fromkeys(SINGLE_ITEM_OUTCOMES, self._single_item_settled),
            WorkUnreadable: self._unreadable,
        }

    def handle_event(self, message: Message) -> None:
        """The bus handler of the events stage: one method per type of message; then
        the job's project sends the embed items its slots allow."""
        body = read(message)
        self._handle(message, body)
        self.dispatch({message.job_id: _maybe_seen(message, body)}, {message.job_id: message.trace})

    def _handle(self, message: Message, body: Contract) -> None:
        route = self._routes.get(type(body))
        if route is None:
            raise MalformedMessage(f"the orchestrator does not take {body.kind} messages")
        with tracing.span(
            f"orchestrator {body.kind}", message.trace, "consumer", job_id=message.job_id
        ):
            route(message.job_id, body)

    def handle_events(self, messages: Sequence[Message]) -> None:
        """The batch handler of the events stage: the events in order, in one unit of
        work (a Clustered event, which writes labels through another store, in its own
        transactions between units); the webhooks of the jobs they ended after each
        commit; then the projects of their jobs send the embed items their slots allow.
        Raises whatever an event raised (the bus then handles them one by one)."""
        unit: list[tuple[Message, Contract]] = []
        touched: dict[str, bool] = {}
        traces: dict[str, dict[str, str]] = {}
        for message in messages:
            body = read(message)
            seen = _maybe_seen(message, body)
            touched[message.job_id] = touched.get(message.job_id, False) or seen
            traces.setdefault(message.job_id, message.trace)
            if type(body) in OUTSIDE_UNIT:
                self._handle_unit(unit)
                unit = []
                with job_context(message.job_id):
                    self._handle(message, body)
            else:
                unit.append((message, body))
        self._handle_unit(unit)
        self.dispatch(touched, traces)

    def dispatch(
        self, touched: Mapping[str, bool], traces: Mapping[str, dict[str, str]] | None = None
    ) -> None:
        """Top up the embed items in flight of the projects of these jobs (job id ->
        whether its event was redelivered: then the project's items in flight are sent
        again, as their first sending may have been lost). One unit of work. A job's
        work continues the trace of its event (``traces``: job id -> traceparent)."""
        projects: dict[str, bool] = {}
        records: dict[str, JobRecord] = {}
        with self.jobs.batch():
            for job_id, again in touched.items():
                try:
                    job = records[job_id] = self.jobs.job(job_id)
                except NotFound:  # a command refused before it made a job
                    continue
                projects[job.project] = projects.get(job.project, False) or again

            def send(item: ItemRecord, attempt: int) -> None:
                job = records.get(item.job_id) or self.jobs.job(item.job_id)
                records[item.job_id] = job
                key = f"{item.job_id}:{item.key}" + (f":retry{attempt - 1}" if attempt > 1 else "")
                try:
                    work = self._embed_work(job, PlannedRecording.from_item(item.key, item.group))
                except Exception as exc:  # this job's bug must not hold up its project
                    if is_retryable(exc):
                        raise
                    kind, text = describe(exc)
                    self._end(item.job_id, "failed", f"its work could not be made: {kind}: {text}")
                    failed.append(item.job_id)
                    return
                message = to_message(item.job_id, key, work)
                trace = (traces or {}).get(item.job_id)
                self.bus.publish(replace(message, trace=trace) if trace else message)

            cap = self.embed_cap()
            failed: list[str] = []
            for project, again in projects.items():
                top_up(self.jobs, project, cap, send, resend=again)
                while failed:  # their slots are free again: the project's next items
                    failed.clear()
                    top_up(self.jobs, project, cap, send)

    def _handle_unit(self, events: Sequence[tuple[Message, Contract]]) -> None:
        if not events:
            return
        ended: list[tuple[JobRecord, dict[str, dict[str, int]]]] = []
        self._ended = ended
        try:
            with self.jobs.batch():
                for run in _runs(events):
                    with job_context(run[0][0].job_id):
                        if len(run) > 1:
                            self._embedded_many(run)
                        else:
                            self._handle(*run[0])
        finally:
            self._ended = None
        if self.notify is not None:
            for job, progress in ended:  # committed: the webhooks may hear of it
                self.notify(job, progress)

    def _send(self, job_id: str, key: str, work: Contract) -> None:
        self.bus.publish(to_message(job_id, key, work))

    # -- discovery: submit, plan, embed --------------------------------------------------

    def submit_discovery(self, job_id: str | None, command: SubmitDiscovery) -> str:
        """Record a discovery job and ask ingestion to plan it (again when redelivered
        before planning: the first publish may have been lost)."""
        job_id = job_id or uuid.uuid4().hex
        created = record_submission(self.jobs, job_id, command)
        if created or self.jobs.items(job_id, stages.INGEST)[0].status == "pending":
            refused = self._exclusion_refused(command)
            if refused:
                self.jobs.set_item(
                    job_id, PLAN_ITEM, stages.INGEST, "failed", group=PLAN_ITEM, error=refused
                )
                self._end(job_id, "failed", refused)
                return job_id
            work = IngestWork(
                project=command.project,
                prefix=command.prefix,
                subset=command.spec.subset,
                params=command.spec.params,
            )
            self._send(job_id, f"{job_id}:ingest", work)
            self.jobs.set_job_status(job_id, "running")
            log.info("job submitted", extra=fields(job_id=job_id, prefix=command.prefix))
        return job_id

    def _exclusion_refused(self, command: SubmitDiscovery) -> str:
        """Why a discovery job cannot leave out the copies it names ("" if it can)."""
        dup_id = command.spec.exclude_duplicates
        if dup_id is None:
            return ""
        dup = self._project_job(dup_id, command.project, DUPLICATES)
        if dup is None:
            return f"no duplicates job {dup_id}"
        if dup.status != "done":
            return f"duplicates job {dup_id} is {dup.status}"
        return ""

    def _planned(self, job_id: str, plan: Planned) -> None:
        """Ingestion's plan: one embed item per planned recording, pending (sent as the
        project's slots allow: ``dispatch``), refused ones failed."""
        self.jobs.add_items(
            job_id,
            stages.EMBED,
            [(r.item, r.group, "pending", "") for r in plan.items]
            + [(r.key, r.group, "failed", r.error) for r in plan.refused],
        )
        self.jobs.set_item(
            job_id, PLAN_ITEM, stages.INGEST, "done", group=PLAN_ITEM, output=plan.manifest
        )
        log.info(
            "job planned",
            extra=fields(job_id=job_id, planned=len(plan.items), refused=len(plan.refused)),
        )
        for group in sorted({r.group for r in plan.refused}):
            self._maybe_cluster(job_id, group)  # a deployment whose files were all refused

    def _plan_failed(self, job_id: str, event: PlanFailed) -> None:
        self.jobs.set_item(
            job_id, PLAN_ITEM, stages.INGEST, "failed", group=PLAN_ITEM, error=event.error
        )
        self._end(job_id, "failed", event.error)

    def _embed_work(self, job: JobRecord, recording: PlannedRecording) -> EmbedWork:
        return EmbedWork(
            project=job.project,
            audio_key=recording.key,
            rel=relative_to(audio_prefix(job.project), recording.key),
            group=recording.group,
            params=_spec(job).params,
            recording=recording if recording.part is not None else None,
        )

    def _embedded(self, job_id: str, event: Embedded | EmbedFailed) -> None:
        self._settle(job_id, event.key, stages.EMBED, event.group, event)
        self._maybe_cluster(job_id, event.group)

    def _embedded_many(self, events: Sequence[tuple[Message, Contract]]) -> None:
        """Consecutive outcomes of one job's recordings (in a batch): settled at once,
        then each deployment they complete asked to cluster (as ``_embedded`` of each)."""
        first = events[0][0]
        with tracing.span(
            f"orchestrator {len(events)} embed outcomes",
            first.trace,
            "consumer",
            job_id=first.job_id,
        ):
            outcomes = []
            for _, e in events:
                if isinstance(e, Embedded):
                    outcomes.append((e.key, e.group, "done", e.output, ""))
                else:
                    assert isinstance(e, EmbedFailed)
                    outcomes.append((e.key, e.group, "failed", "", e.error))
            self.jobs.settle_items(first.job_id, stages.EMBED, outcomes)
            groups = list(dict.fromkeys(group for _, group, *_ in outcomes))
            unsettled = self.jobs.unsettled_groups(first.job_id, stages.EMBED, groups)
            for group in groups:
                if group not in unsettled:
                    self._maybe_cluster(first.job_id, group)

    # -- discovery: cluster, link, end ---------------------------------------------------

    def _maybe_cluster(self, job_id: str, group: str) -> None:
        if not self.jobs.group_settled(job_id, stages.EMBED, group):
            return
        job = self.jobs.job(job_id)
        if job.status != "running":  # cancelled, or failed (unreadable work): no more work
            return
        asked = self.jobs.items(job_id, stages.CLUSTER, group)
        if asked and asked[0].status != "pending":
            return  # clustered already (a redelivered event)
        if not asked:
            self.jobs.set_item(job_id, group, stages.CLUSTER, "pending", group=group)
        # else: redelivered while pending. The first publish may have been lost with a
        # killed orchestrator (state committed, message not sent): send it again; the
        # clustering of a group is idempotent and its outcome settles once.
        recordings = self._embedded_recordings(job, group)
        work = ClusterWork(project=job.project, group=group, recordings=recordings, spec=_spec(job))
        self._send(job_id, f"{job_id}:cluster:{group}", work)
        log.info(
            "deployment ready to cluster",
            extra=fields(job_id=job_id, group=group, recordings=len(recordings)),
        )

    def _embedded_recordings(
        self, job: JobRecord, group: str | None = None
    ) -> tuple[EmbeddedRecording, ...]:
        """The embeddings of a job's recordings (of one deployment), a part each."""
        audio = audio_prefix(job.project)
        done = [
            (PlannedRecording.from_item(i.key, i.group), i.output)
            for i in self.jobs.items(job.id, stages.EMBED, group)
            if i.status == "done"
        ]
        return tuple(
            EmbeddedRecording(rel=relative_to(audio, r.key), embeddings=output, first=r.first)
            for r, output in done
        )

    def _clustered(self, job_id: str, event: Clustered | ClusterFailed) -> None:
        if isinstance(event, Clustered) and self._settle(
            job_id, event.group, stages.CLUSTER, event.group, event
        ):
            # clustered again: the labels follow their windows; the sheet shows them
            if event.moves:
                moves = [Move(m.old, m.new, m.overlap, m.windows) for m in event.moves]
                carry_labels(self.labels, job_id, event.group, moves)
            if self.labels.revision(job_id, event.group):
                project = self.jobs.job(job_id).project
                render_review(self.objects, self.labels, project, job_id, event.group)
        elif isinstance(event, ClusterFailed):
            self._settle(job_id, event.group, stages.CLUSTER, event.group, event)
        self._maybe_finish(job_id)

    def _maybe_finish(self, job_id: str) -> None:
        """When every deployment is clustered: link them into sound types (the fan-in
        step, once), then end the job."""
        if self.jobs.job(job_id).status != "running":  # cancelled, or failed already
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
        self._end(job_id, "failed" if errors else "done", "; ".join(errors))

    def _link(self, job: JobRecord, groups: list[str], round_id: str) -> None:
        """Ask for the link step. A new round gets an id, kept in the pending item; a
        redelivered event republishes the same round (the first publish may have been
        lost; the step is idempotent)."""
        if not round_id:
            round_id = uuid.uuid4().hex[:12]
            self.jobs.set_item(
                job.id, stages.LINK_ITEM, stages.LINK, "pending", group="", output=round_id
            )
        work = LinkWork(
            project=job.project, groups=tuple(groups), link=_spec(job).link, round=round_id
        )
        self._send(job.id, f"{job.id}:link:{round_id}", work)
        log.info("deployments ready to link", extra=fields(job_id=job.id, groups=len(groups)))

    def _linked(self, job_id: str, event: Linked | LinkFailed) -> None:
        """The link step's outcome, if it is the current round's (a round started before
        a retry, or redelivered after it settled, is ignored)."""
        current = self.jobs.items(job_id, stages.LINK)
        if not current or current[0].status != "pending" or current[0].output != event.round:
            log.info("outcome of an older link round ignored", extra=fields(job_id=job_id))
            return
        self._settle(job_id, stages.LINK_ITEM, stages.LINK, "", event)
        self._maybe_finish(job_id)

    # -- retry, cancel, unreadable work ----------------------------------------------------

    def retry_failed(self, job_id: str) -> list[str]:
        """Failed recordings of a job go through embedding again; their deployments are
        clustered again once they are settled (with whatever now embeds), and linked
        again. A failed job (its work could not be read) is driven on from where it
        stopped: its pending recordings go out as the project's slots allow, its
        settled deployments are clustered, and it ends when all is done. The event's
        dispatch sends the project's work in flight again (``_maybe_seen``): work of a
        failed job may never have been answered (an item whose work could not be read).
        A cancelled job stays cancelled (its queued work is dropped: ``cancel_marks.py``).
        Returns the failed recordings that are pending again."""
        job = self.jobs.job(job_id)
        if job.status == "cancelled":
            log.info("a cancelled job is not retried", extra=fields(job_id=job_id))
            return []
        groups = {i.key: i.group for i in self.jobs.items(job_id, stages.EMBED)}
        keys = self.jobs.reset_failed(job_id, stages.EMBED)
        retried = sorted({groups[k] for k in keys})
        self.jobs.discard_items(job_id, stages.CLUSTER, retried)
        link = self.jobs.items(job_id, stages.LINK)
        relink = bool(retried) or bool(link and link[0].status == "failed")
        if relink:  # a link in flight now belongs to an older round: its outcome is ignored
            self.jobs.discard_items(job_id, stages.LINK, [stages.LINK_ITEM])
        if keys or relink or job.status == "failed":
            self.jobs.set_job_status(job_id, "running")
        if keys:  # pending again: the event's dispatch sends them as the slots allow
            log.info("retrying", extra=fields(job_id=job_id, recordings=len(keys), groups=retried))
        for group in sorted(set(groups.values()) - set(retried)):
            if not self.jobs.items(job_id, stages.CLUSTER, group):
                self._maybe_cluster(job_id, group)  # settled while the job was not running
        if not retried:
            self._maybe_finish(job_id)
        return keys

    def _cancel(self, job_id: str, _: Cancel) -> None:
        """Only a job still at work is cancelled: a finished one keeps its outcome."""
        job = self.jobs.job(job_id)
        if job.status in ("queued", "running"):
            CancelMarks(self.objects).mark(job.project, job_id)  # queued work is dropped
            self._end(job_id, "cancelled")
        else:
            log.info("a finished job is not cancelled", extra=fields(job_id=job_id))

    def _unreadable(self, job_id: str, event: WorkUnreadable) -> None:
        log.error(
            "work of this job could not be read",
            extra=fields(job_id=job_id, stage=event.dead_stage, error=event.error),
        )
        self._end(job_id, "failed", event.error)

    # -- single-item jobs: export, evaluation ---------------------------------------------

    def submit_evaluation(self, job_id: str, command: SubmitEvaluation) -> None:
        """An evaluation job: one item, run by the evaluation service."""
        work = EvaluateWork(project=command.project, request=command.request)
        self._single_item_job(job_id, command, work)

    def submit_export(self, job_id: str, command: SubmitExport) -> None:
        """An export job: the reviewed labels of a finished discovery job -> training clips
        (one item, run by the export service). Its recordings and deployments go with it."""
        source = command.discovery_job
        discovery = self._project_job(source, command.project, DISCOVER)
        if discovery is None:
            self._refuse(job_id, command, f"no discovery job {source}")
            return
        clustered = [i.group for i in self.jobs.items(source, stages.CLUSTER) if i.status == "done"]
        if discovery.status not in FINAL or not clustered:
            error = f"discovery job {source} is {discovery.status}, with no clusters to export"
            self._refuse(job_id, command, error)
            return
        work = ExportWork(
            project=command.project,
            discovery_job=source,
            options=command.options,
            groups=tuple(sorted(clustered)),
            recordings=tuple(
                dict.fromkeys(  # a long recording's parts: the recording once
                    PlannedRecording(
                        key=PlannedRecording.from_item(i.key, i.group).key, group=i.group
                    )
                    for i in self.jobs.items(source, stages.EMBED)
                    if i.status == "done"
                )
            ),
            labels=tuple(
                SheetLabel(folder=r.target.folder, target=r.target.key, label=r.label)
                for r in self.labels.labels(source)
            ),
        )
        self._single_item_job(job_id, command, work)

    def submit_on_results(self, job_id: str, command: SubmitOnResults) -> None:
        """A job over a finished discovery job's stored results: one item of the training
        stage, with the discovery job's embeddings, deployments and labels (and the
        model it applies, for classify and suggest)."""
        assert isinstance(command, SingleItem)
        job_record = self._finished_discovery(job_id, command, command.discovery_job)
        if job_record is None:
            return
        source = StoredResults(
            discovery_job=job_record.id,
            groups=tuple(
                sorted(
                    i.group
                    for i in self.jobs.items(job_record.id, stages.CLUSTER)
                    if i.status == "done"
                )
            ),
            recordings=self._embedded_recordings(job_record),
            labels=tuple(
                SheetLabel(folder=r.target.folder, target=r.target.key, label=r.label)
                for r in self.labels.labels(job_record.id)
            ),
        )
        project, results = command.project, job_results_prefix(command.project, job_record.id)
        work: Work
        if isinstance(command, SubmitTraining):
            exclude = ""
            if command.options.exclude_duplicates is not None:
                found = self._duplicates_list(job_id, command, command.options.exclude_duplicates)
                if found is None:
                    return
                exclude = found
            work = TrainWork(
                project=project,
                source=source,
                output=models_prefix(project, job_id),
                options=command.options,
                exclude=exclude,
            )
        elif isinstance(command, SubmitDuplicates):
            output = job_results_prefix(project, job_id)
            work = DuplicatesWork(
                project=project, source=source, output=output, options=command.options
            )
        elif isinstance(command, SubmitSearch):
            output = results + review_group("search", job_id) + "/"
            work = SearchWork(
                project=project, source=source, output=output, options=command.options
            )
        else:
            assert isinstance(command, SubmitClassify | SubmitSuggest)
            model = self._trained_model(job_id, command, command.options.model_id)
            if model is None:
                return
            if isinstance(command, SubmitClassify):
                output = job_results_prefix(project, job_id)
                work = ClassifyWork(
                    project=project,
                    source=source,
                    output=output,
                    options=command.options,
                    model=model,
                )
            else:
                output = results + review_group("suggest", job_id) + "/"
                work = SuggestWork(
                    project=project,
                    source=source,
                    output=output,
                    options=command.options,
                    model=model,
                )
        self._single_item_job(job_id, command, work)

    def _finished_discovery(
        self, job_id: str, command: SingleItem, source: str
    ) -> JobRecord | None:
        """The discovery job a command works on, if it is this project's and finished
        with embedded recordings; else the command's job fails, with the reason."""
        discovery = self._project_job(source, command.project, DISCOVER)
        if discovery is None:
            self._refuse(job_id, command, f"no discovery job {source}")
            return None
        if discovery.status not in FINAL or not self.jobs.items(source, stages.EMBED, None):
            self._refuse(job_id, command, f"discovery job {source} is {discovery.status}")
            return None
        return discovery

    def _duplicates_list(self, job_id: str, command: SubmitTraining, dup_id: str) -> str | None:
        """The object key of a finished duplicates job's exclusion list, if that job
        looked at the same discovery job; else the job fails."""
        dup = self._project_job(dup_id, command.project, DUPLICATES)
        if dup is None or dup.params.get("discovery_job") != command.discovery_job:
            error = f"no duplicates job {dup_id} of discovery job {command.discovery_job}"
            self._refuse(job_id, command, error)
            return None
        if dup.status != "done":
            self._refuse(job_id, command, f"duplicates job {dup_id} is {dup.status}")
            return None
        return job_results_prefix(command.project, dup_id) + EXCLUDE_FILE

    def _trained_model(self, job_id: str, command: SingleItem, model_id: str) -> str | None:
        """The object prefix of a trained model of the project; else the job fails."""
        training = self._project_job(model_id, command.project, TRAIN)
        if training is None:
            self._refuse(job_id, command, f"no model {model_id}")
            return None
        if training.status != "done":
            self._refuse(job_id, command, f"model {model_id} is {training.status}, not trained")
            return None
        return models_prefix(command.project, model_id)

    def _project_job(self, job_id: str, project: str, kind: str) -> JobRecord | None:
        """The project's job of this kind with this id, if there is one."""
        try:
            job = self.jobs.job(job_id)
        except NotFound:
            return None
        return job if job.project == project and job.kind == kind else None

    def _refuse(self, job_id: str, command: SingleItem, error: str) -> None:
        """A job that cannot start: recorded as failed, with the reason."""
        record_submission(self.jobs, job_id, command)
        if self.jobs.job(job_id).status == "queued":
            self._end(job_id, "failed", error)

    def _single_item_job(self, job_id: str, command: SingleItem, work: Work) -> None:
        stage = work.stage
        created = record_submission(self.jobs, job_id, command)
        item = self.jobs.items(job_id, stage)
        waiting = bool(item) and item[0].status == "pending"
        if created or (waiting and self.jobs.job(job_id).status in ("queued", "running")):
            # again when redelivered while its work is pending: the first publish may
            # have been lost with a killed orchestrator (the work is idempotent)
            self._send(job_id, f"{job_id}:{stage}", work)
            self.jobs.set_job_status(job_id, "running")

    def _single_item_settled(self, job_id: str, event: Done | Failed) -> None:
        stage = SINGLE_ITEM_OUTCOMES[type(event)]
        self._settle(job_id, stage, stage, stage, event)
        if isinstance(event, Failed):
            self._end(job_id, "failed", event.error)
        else:
            self._end(job_id, "done")

    # -- state ------------------------------------------------------------------------------

    def _settle(self, job_id: str, key: str, stage: str, group: str, event: Done | Failed) -> bool:
        """Record a worker's outcome for one item (its output, or its error); False when
        it was settled already (a redelivered event)."""
        if isinstance(event, Failed):
            return self.jobs.set_item(job_id, key, stage, "failed", group=group, error=event.error)
        return self.jobs.set_item(job_id, key, stage, "done", group=group, output=event.output)

    def _end(self, job_id: str, status: str, error: str = "") -> None:
        """The job's outcome; its webhook hears of it once (not again on redelivery)."""
        before = self.jobs.job(job_id)
        self.jobs.set_job_status(job_id, status, error=error)
        if self.notify is not None and (before.status, before.error) != (status, error):
            ended = (self.jobs.job(job_id), self.jobs.progress(job_id))
            if self._ended is not None:  # in a unit of work: told after its commit
                self._ended.append(ended)
            else:
                self.notify(*ended)


# The outcomes that end a single-item job, and the stage (its item's key) they settle.
SINGLE_ITEM_OUTCOMES: dict[type[Event], str] = {
    Exported: stages.EXPORT,
    ExportFailed: stages.EXPORT,
    Evaluated: stages.EVALUATE,
    EvaluateFailed: stages.EVALUATE,
    **{
        c: stages.TRAIN
        for c in CONTRACT
        if issubclass(c, Event) and issubclass(c, Reported | TrainingFailed)
    },
}

# Events handled outside a batch's unit of work: a Clustered event carries labels over
# (the LabelStore, its own transactions; on SQLite a second writer would wait for the
# unit's lock).
OUTSIDE_UNIT: frozenset[type[Contract]] = frozenset({Clustered})


def _maybe_seen(message: Message, body: Contract) -> bool:
    """Whether this event may have been handled before without its work being sent (the
    broker's redelivery, the bus's retry of a failed attempt), or asks for the work in
    flight again (a user's retry: a way out whatever happened): then its project's
    items in flight are sent again (embedding is idempotent)."""
    return message.redelivered or message.attempt > 0 or isinstance(body, RetryFailed)


def _runs(events: Sequence[tuple[Message, Contract]]) -> list[list[tuple[Message, Contract]]]:
    """The events in order, consecutive embed outcomes of one job together."""
    runs: list[list[tuple[Message, Contract]]] = []
    for message, body in events:
        last = runs[-1] if runs else None
        if (
            isinstance(body, Embedded | EmbedFailed)
            and last is not None
            and last[0][0].job_id == message.job_id
            and isinstance(last[0][1], Embedded | EmbedFailed)
        ):
            last.append((message, body))
        else:
            runs.append([(message, body)])
    return runs


def _spec(job: JobRecord) -> DiscoverySpec:
    """A discovery job's parameters, as recorded when it was submitted."""
    return DiscoverySpec.from_dict(job.params)
