"""The whole platform in one process: the orchestrator and every stage on the in-process
bus, the local object store and a SQLite job store. ``run()`` delivers messages until
every queue is empty (the orchestrator's dead-letter reporter included), as the deployed
services would, without a broker, a bucket or a database server."""

from __future__ import annotations

from pathlib import Path

from bdisc.adapters.inprocess_bus import InProcessBus
from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.cancel_marks import CancelMarks
from bdisc.app.cluster_stage import ClusterStage
from bdisc.app.dead_letters import report_dead_letters
from bdisc.app.embed_dispatch import DispatchCap
from bdisc.app.embed_stage import EmbedStage
from bdisc.app.evaluate_stage import EvaluateStage
from bdisc.app.export_stage import ExportStage
from bdisc.app.ingest_stage import IngestStage
from bdisc.app.keys import audio_prefix
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.stage_handler import stage_handler
from bdisc.app.training_stage import TrainingStage
from bdisc.model.port import AcousticModel
from bdisc.ports.message_bus import Handler


class InProcessPlatform:
    def __init__(self, root: Path, model: AcousticModel, embed_cap: int = 0) -> None:
        """``embed_cap``: a project's recordings in flight at most (0: the default)."""
        url = f"sqlite:///{root / 'jobs.sqlite'}"
        migrate(url)
        self.jobs = SqlJobStore(url)
        self.objects = LocalStore(root / "objects")
        self.bus = InProcessBus()
        self.labels = SqlLabelStore(self.jobs.engine)
        self.orchestrator = Orchestrator(
            self.jobs,
            self.bus,
            self.objects,
            labels=self.labels,
            embed_cap=DispatchCap(fixed=embed_cap),
        )
        self.stages = {
            stages.INGEST: IngestStage(self.objects),
            stages.EMBED: EmbedStage(model, self.objects, root / "scratch"),
            stages.CLUSTER: ClusterStage(self.objects, root / "scratch"),
            stages.EXPORT: ExportStage(self.objects, root / "scratch"),
            stages.EVALUATE: EvaluateStage(self.objects, root / "scratch"),
            stages.TRAIN: TrainingStage(self.objects, root / "scratch"),
        }
        (root / "scratch").mkdir(parents=True, exist_ok=True)
        self.handlers: dict[str, Handler] = {
            stages.EVENTS: self.orchestrator.handle_event,
            **{
                name: stage_handler(self.bus, s.routes, CancelMarks(self.objects))
                for name, s in self.stages.items()
            },
        }
        self.delivered: dict[str, int] = dict.fromkeys(self.handlers, 0)

    def upload(self, project: str, rel: str, local: Path) -> str:
        key = audio_prefix(project) + rel
        self.objects.put_file(key, local)
        return key

    def step(self, stage: str) -> int:
        """Deliver what waits on one stage's queue now; returns how many were settled."""
        settled = self.bus.consume(stage, self.handlers[stage], idle_timeout_s=0.0)
        self.delivered[stage] += settled
        return settled

    def run(self, max_rounds: int = 100) -> int:
        """Deliver until every queue is empty; returns how many messages were settled."""
        total = 0
        for _ in range(max_rounds):
            moved = sum(self.step(stage) for stage in self.handlers)
            moved += report_dead_letters(self.bus)
            if moved == 0:
                return total
            total += moved
        raise AssertionError(f"the platform did not go quiet in {max_rounds} rounds")
