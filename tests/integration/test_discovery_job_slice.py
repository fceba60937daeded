"""A discovery job through the platform's stages, on real S3, RabbitMQ and PostgreSQL:
ingestion plan -> orchestrator fan-out -> embedding consumer -> events -> fan-in per
deployment -> clustering; retrying failed recordings clusters their deployment again."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.s3_store import S3Store
from bdisc.adapters.sql_job_store import SqlJobStore, migrate
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.app import stages
from bdisc.app.cluster_stage import ClusterStage
from bdisc.app.dead_letters import report_dead_letters
from bdisc.app.embed_dispatch import DispatchCap
from bdisc.app.embed_stage import EmbedStage
from bdisc.app.ingest_stage import PLAN_FILE, IngestStage
from bdisc.app.keys import audio_prefix, job_results_prefix, results_prefix
from bdisc.app.messages import (
    ClusterWork,
    EmbedWork,
    LinkWork,
    RetryFailed,
    read_as,
    to_message,
)
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.stage_handler import stage_handler
from bdisc.model.birdnet import BirdNetV24
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig
from bdisc.ports.message_bus import Message

from ..commands import discovery
from ..conftest import admin_store
from ..model.helpers import CountingModel, write_clip

Platform = tuple[str, S3Store, RabbitBus, SqlJobStore]


@pytest.fixture
def platform(s3_endpoint: str, rabbit_url: str, postgres_url: str) -> Iterator[Platform]:
    """A new project's bucket, the broker with empty stage queues, a migrated job store."""
    project = f"p{uuid.uuid4().hex[:8]}"
    objects = admin_store(s3_endpoint, f"bdisc-{project}")
    bus = RabbitBus(rabbit_url, backoff_s=0.05)
    for stage in stages.PREFETCH:  # every stage's queue
        bus.purge(stage)
    migrate(postgres_url)
    yield project, objects, bus, SqlJobStore(postgres_url)
    bus.close()


def plan(bus: RabbitBus, objects: S3Store, orchestrator: Orchestrator) -> None:
    """Ingestion plans the submitted job; the orchestrator records the plan."""
    ingestion = stage_handler(bus, IngestStage(objects).routes)
    assert bus.consume(stages.INGEST, ingestion, idle_timeout_s=1.0) == 1
    assert bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0) == 1


@pytest.mark.model
@pytest.mark.integration
def test_job_fans_out_and_in(
    platform: Platform,
    model: BirdNetV24,
    audio_dir: Path,
    tmp_path: Path,
) -> None:
    project, objects, bus, jobs = platform
    local = tmp_path / "recordings"
    write_clip(audio_dir / "soundscape.flac", local / "siteA" / "a1.wav", 9.0)
    write_clip(audio_dir / "pica_pica_30s.flac", local / "siteA" / "a2.flac", 6.0)
    write_clip(audio_dir / "soundscape.flac", local / "siteB" / "b1.wav", 6.0)
    (local / "siteB" / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 200)
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        objects.put_file(audio_prefix(project) + f.relative_to(local).as_posix(), f)

    # room for all three recordings at once (fair dispatch has its own tests)
    orchestrator = Orchestrator(
        jobs, bus, objects, labels=SqlLabelStore(jobs.engine), embed_cap=DispatchCap(fixed=8)
    )
    job = orchestrator.submit_discovery(None, discovery(project, cluster={"min_cluster_size": 2}))
    assert jobs.progress(job) == {"ingest": {"pending": 1}}
    assert jobs.job(job).status == "running"

    # Ingestion probes every recording in S3 (ranged reads) and refuses the broken one.
    plan(bus, objects, orchestrator)
    assert jobs.progress(job) == {"ingest": {"done": 1}, "embed": {"running": 3, "failed": 1}}
    broken = next(i for i in jobs.items(job, stages.EMBED) if i.key.endswith("broken.wav"))
    assert broken.error.startswith("CorruptAudio")
    table = objects.get_bytes(job_results_prefix(project, job) + PLAN_FILE).decode()
    planned = {r["path"]: r for r in csv.DictReader(io.StringIO(table))}
    assert planned["siteB/broken.wav"]["status"] == "refused"
    assert planned["siteA/a2.flac"]["sample_rate"] == "48000"
    assert float(planned["siteA/a1.wav"]["duration_s"]) == 9.0

    counter = CountingModel(model)
    embedder = stage_handler(bus, EmbedStage(counter, objects).routes)
    assert bus.consume(stages.EMBED, embedder, idle_timeout_s=2.0) == 3
    assert counter.windows == 3 + 2 + 2
    assert bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0) == 3
    assert jobs.progress(job) == {
        "ingest": {"done": 1},
        "embed": {"done": 3, "failed": 1},
        "cluster": {"pending": 2},
    }

    # Fan-in: one cluster message per deployment, naming its recordings and embeddings,
    # with the job's parameters.
    asked: list[Message] = []
    bus.consume(stages.CLUSTER, asked.append, idle_timeout_s=1.0)
    works = {w.group: w for w in (read_as(m, ClusterWork) for m in asked)}
    assert sorted(works) == ["siteA", "siteB"]
    site_a = next(m for m in asked if read_as(m, ClusterWork).group == "siteA")
    assert [r.rel for r in works["siteA"].recordings] == ["siteA/a1.wav", "siteA/a2.flac"]
    assert works["siteA"].spec.cluster.min_cluster_size == 2
    assert works["siteA"].spec.params == AnalysisParams()

    # The stored Parquet is what `bdisc embed` writes locally for the same audio.
    item = next(i for i in jobs.items(job, stages.EMBED) if i.key.endswith("a1.wav"))
    remote = tmp_path / "remote.parquet"
    objects.download(item.output, remote)
    api.embed(
        [local],
        RunConfig(tmp_path / "cli", AnalysisParams(), progress=False),
        factory=lambda threads: model,
    )
    cli = pq.read_table(tmp_path / "cli" / "embeddings" / "siteA" / "a1.embeddings.parquet")
    served = pq.read_table(remote)
    assert served.column("recording").to_pylist() == ["siteA/a1.wav"] * 3
    np.testing.assert_allclose(
        np.stack(served.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(cli.column("embedding").to_numpy(zero_copy_only=False)),
        atol=1e-6,
    )

    # A redelivered embed message computes nothing and changes nothing.
    again_work = EmbedWork(
        project=project,
        audio_key=item.key,
        rel="siteA/a1.wav",
        group="siteA",
        params=AnalysisParams(),
    )
    bus.publish(to_message(job, f"{job}:{item.key}", again_work))
    bus.consume(stages.EMBED, embedder, idle_timeout_s=1.0)
    assert counter.windows == 7
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    # While siteA is not clustered yet, a redelivered event asks again, with the same
    # message (a publish lost with a killed orchestrator is recovered this way).
    again_asked: list[Message] = []
    assert bus.consume(stages.CLUSTER, again_asked.append, idle_timeout_s=0.5) == 1
    assert again_asked[0].idempotency_key == site_a.idempotency_key
    assert again_asked[0].payload == site_a.payload
    assert jobs.progress(job)["embed"] == {"done": 3, "failed": 1}

    # The clustering stage turns each deployment into review outputs in S3.
    clusterer = stage_handler(bus, ClusterStage(objects).routes)
    for m in asked:
        clusterer(m)
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    assert jobs.job(job).status == "running"  # the fan-in step is next: linking
    linking: list[Message] = []
    assert bus.consume(stages.CLUSTER, linking.append, idle_timeout_s=1.0) == 1
    assert read_as(linking[0], LinkWork).groups == ("siteA", "siteB")
    clusterer(linking[0])
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    assert jobs.job(job).status == "done"
    assert jobs.progress(job)["cluster"] == {"done": 2}
    assert jobs.progress(job)["link"] == {"done": 1}
    types = objects.get_bytes(job_results_prefix(project, job) + "sound_types.csv").decode()
    assert types.splitlines()[0] == "type,folder,cluster,size,strength,type_size,members"
    assert {line.split(",")[1] for line in types.splitlines()[1:]} <= {"siteA", "siteB"}
    results = results_prefix(project, job, "siteA")
    stored = set(objects.list(results))
    for name in ("clusters.csv", "review.csv", "map.png", "index.html"):
        assert results + name in stored, name
    assert any(k.startswith(results + "montages/") for k in stored)
    rows = objects.get_bytes(results + "clusters.csv").decode().splitlines()
    assert rows[0].startswith("folder,file,start_s") and len(rows) == 1 + 5
    assert {r.split(",")[1] for r in rows[1:]} == {"a1.wav", "a2.flac"}

    # The broken recording is replaced and retried: siteB is clustered again with it.
    write_clip(audio_dir / "soundscape.flac", local / "fixed.wav", 6.0)
    objects.put_file(audio_prefix(project) + "siteB/broken.wav", local / "fixed.wav")
    orchestrator.handle_event(to_message(job, f"{job}:retry", RetryFailed()))
    again_sent = jobs.items(job, stages.EMBED, status="running")
    assert [i.key.rsplit("/", 1)[-1] for i in again_sent] == ["broken.wav"]
    assert jobs.job(job).status == "running"
    bus.consume(stages.EMBED, embedder, idle_timeout_s=1.0)
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    again: list[Message] = []
    bus.consume(stages.CLUSTER, again.append, idle_timeout_s=1.0)
    assert [read_as(m, ClusterWork).group for m in again] == ["siteB"]
    assert len(read_as(again[0], ClusterWork).recordings) == 2
    clusterer(again[0])
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    assert jobs.job(job).status == "running"  # linked again, with siteB's new clusters
    assert bus.consume(stages.CLUSTER, clusterer, idle_timeout_s=1.0) == 1
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    assert jobs.job(job).status == "done"
    site_b = objects.get_bytes(results_prefix(project, job, "siteB") + "clusters.csv").decode()
    assert "broken.wav" in site_b


@pytest.mark.model
@pytest.mark.integration
def test_poison_work_fails_its_recording_and_the_job_goes_on(
    platform: Platform,
    model: BirdNetV24,
    audio_dir: Path,
    tmp_path: Path,
) -> None:
    project, objects, bus, jobs = platform
    for name in ("ok.wav", "poison.wav"):
        clip = write_clip(audio_dir / "soundscape.flac", tmp_path / name, 6.0)
        objects.put_file(f"{audio_prefix(project)}site/{name}", clip)
    orchestrator = Orchestrator(jobs, bus, objects, labels=SqlLabelStore(jobs.engine))
    job = orchestrator.submit_discovery(None, discovery(project))
    plan(bus, objects, orchestrator)
    embedder = stage_handler(bus, EmbedStage(model, objects).routes)

    def handler(message: Message) -> None:
        if read_as(message, EmbedWork).rel.endswith("poison.wav"):
            raise ValueError("the consumer crashed")  # dies before the stage could report
        embedder(message)

    bus.consume(stages.EMBED, handler, idle_timeout_s=1.0)
    assert report_dead_letters(bus) == 1
    bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    items = {i.key.rsplit("/", 1)[-1]: i for i in jobs.items(job, stages.EMBED)}
    assert items["ok.wav"].status == "done"
    assert items["poison.wav"].status == "failed"
    assert "dead-lettered: ValueError: the consumer crashed" in items["poison.wav"].error
    asked: list[Message] = []
    bus.consume(stages.CLUSTER, asked.append, idle_timeout_s=1.0)
    recordings = [read_as(m, ClusterWork).recordings for m in asked]
    assert [[r.embeddings for r in rs] for rs in recordings] == [[items["ok.wav"].output]]
    bus.close()
