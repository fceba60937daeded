"""The platform's job logic, every stage included, in one process: the orchestrator and the
ingestion, embedding (real BirdNET), clustering, export and evaluation stages on the
in-process bus, the local object store and SQLite. Real jobs on a few seconds of bundled
audio run to completion, and so do cancel, retry and failure paths; the RabbitMQ,
S3 and PostgreSQL suites cover delivery and faults of the real infrastructure."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from bdisc.adapters.inprocess_bus import InProcessBus
from bdisc.app import stages
from bdisc.app.keys import files_prefix, job_results_prefix, results_prefix, trainset_prefix
from bdisc.app.messages import (
    Cancel,
    ClusterWork,
    EmbedWork,
    EvaluationParams,
    ExportParams,
    RetryFailed,
    SubmitEvaluation,
    SubmitExport,
    read_as,
    to_message,
)
from bdisc.app.orchestrator import Orchestrator
from bdisc.discovery.sheets import REVIEW_FILE
from bdisc.model.birdnet import BirdNetV24
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig
from bdisc.ports.label_store import Change, Target
from bdisc.ports.message_bus import Message

from ..commands import discovery
from ..inprocess_platform import InProcessPlatform
from .helpers import CountingModel, write_clip

pytestmark = pytest.mark.model


@pytest.fixture
def platform(tmp_path: Path, model: BirdNetV24, audio_dir: Path) -> InProcessPlatform:
    """Two deployments of short real recordings, and one file that is not audio."""
    counting = CountingModel(model)
    p = InProcessPlatform(tmp_path, counting)
    clips = tmp_path / "clips"
    for rel, src, seconds in (
        ("north/n1.wav", "soundscape.flac", 9.0),
        ("north/n2.wav", "pica_pica_30s.flac", 6.0),
        ("south/s1.wav", "soundscape.flac", 6.0),
    ):
        p.upload("proj", rel, write_clip(audio_dir / src, clips / rel, seconds))
    (clips / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 200)
    p.upload("proj", "south/broken.wav", clips / "broken.wav")
    return p


def counted(p: InProcessPlatform) -> int:
    model = p.stages[stages.EMBED].model  # type: ignore[attr-defined]
    assert isinstance(model, CountingModel)
    return model.windows


def test_a_discovery_job_runs_to_its_sound_types(platform: InProcessPlatform) -> None:
    p = platform
    job = p.orchestrator.submit_discovery(None, discovery("proj", cluster={"min_cluster_size": 2}))
    p.run()
    record = p.jobs.job(job)
    assert (record.status, record.error) == ("done", "")
    assert p.jobs.progress(job) == {
        "ingest": {"done": 1},
        "embed": {"done": 3, "failed": 1},
        "cluster": {"done": 2},
        "link": {"done": 1},
    }
    broken = next(i for i in p.jobs.items(job, stages.EMBED) if i.key.endswith("broken.wav"))
    assert broken.error.startswith("CorruptAudio")
    assert counted(p) == 3 + 2 + 2  # windows of 9 s, 6 s and 6 s, no overlap
    # every hop was one message: ingest, 3 embeds, 2 clusters, 1 link
    assert {k: v for k, v in p.delivered.items() if k != stages.EVENTS} == {
        stages.INGEST: 1,
        stages.EMBED: 3,
        stages.CLUSTER: 3,
        stages.EXPORT: 0,
        stages.EVALUATE: 0,
        stages.TRAIN: 0,
    }
    stored = set(p.objects.list(job_results_prefix("proj", job)))
    for group in ("north", "south"):
        for name in ("clusters.csv", REVIEW_FILE, "map.png", "index.html", "prototypes.npz"):
            assert results_prefix("proj", job, group) + name in stored, (group, name)
    assert job_results_prefix("proj", job) + "sound_types.csv" in stored
    assert job_results_prefix("proj", job) + "recordings.csv" in stored
    # The same job again (another id, same audio and parameters): nothing is embedded twice.
    again = p.orchestrator.submit_discovery(
        None, discovery("proj", cluster={"min_cluster_size": 2})
    )
    p.run()
    assert p.jobs.job(again).status == "done" and counted(p) == 7


def test_labelled_clusters_export_to_training_clips(platform: InProcessPlatform) -> None:
    p = platform
    job = p.orchestrator.submit_discovery(None, discovery("proj", prefix="north/"))
    p.run()
    assert p.jobs.job(job).status == "done"
    sheet_key = results_prefix("proj", job, "north") + REVIEW_FILE
    rows = list(csv.DictReader(io.StringIO(p.objects.get_bytes(sheet_key).decode())))
    labelled = int(rows[0]["Cluster"])
    members = windows_of(p, job, "north")
    other = next(w for w, c in members.items() if c == labelled)  # a window's own label wins
    changes = [
        Change(Target.cluster("north", labelled), "magpie"),
        Change(Target.window("north", f"north/{other[0]}", other[1], other[2]), "wind"),
    ]
    p.labels.write(job, "north", changes, "ana", "cluster", expected=0)

    command = SubmitExport(
        project="proj", discovery_job=job, options=ExportParams(pad_s=0.5, sample_rate=24_000)
    )
    p.bus.publish(to_message("exp1", "exp1:submit", command))
    p.run()
    assert p.jobs.job("exp1").status == "done", p.jobs.job("exp1").error
    clips = [k for k in p.objects.list(trainset_prefix("proj", job)) if k.endswith(".wav")]
    assert len(clips) == int(rows[0]["Size"])
    assert sum("/magpie/" in k for k in clips) == int(rows[0]["Size"]) - 1
    assert [k.split("/trainset/")[1].split("/")[0] for k in clips if "/wind/" in k] == ["wind"]
    # An export of a job of another project is refused, as a failed job with the reason.
    stranger = SubmitExport(project="other", discovery_job=job)
    p.bus.publish(to_message("exp2", "exp2:submit", stranger))
    p.run()
    assert p.jobs.job("exp2").status == "failed"
    assert f"no discovery job {job}" in p.jobs.job("exp2").error


def test_evaluation_job_and_its_failure(platform: InProcessPlatform, data_dir: Path) -> None:
    p = platform
    table = data_dir / "evaluation" / "base_bnet_labels_CHECKED_300_performance_data.csv"
    p.objects.put_file(files_prefix("proj") + "paper/perf.csv", table)
    for job_id, detections in (("ev1", "paper/perf.csv"), ("ev2", "nothing/")):
        request = EvaluationParams(detections=detections, truth="paper/perf.csv")
        command = SubmitEvaluation(project="proj", request=request)
        p.bus.publish(to_message(job_id, f"{job_id}:submit", command))
    p.run()
    assert p.jobs.job("ev1").status == "done", p.jobs.job("ev1").error
    assert results_prefix("proj", "ev1", "evaluation") + "per_species.csv" in set(
        p.objects.list(job_results_prefix("proj", "ev1"))
    )
    failed = p.jobs.job("ev2")
    assert failed.status == "failed" and "ConfigError: nothing uploaded at files/nothing/" in (
        failed.error
    )


def windows_of(p: InProcessPlatform, job: str, folder: str) -> dict[tuple[str, float, float], int]:
    """(file, start_s, end_s) -> cluster, as the deployment's clusters.csv says now."""
    text = p.objects.get_bytes(results_prefix("proj", job, folder) + "clusters.csv").decode()
    return {
        (r["file"], float(r["start_s"]), float(r["end_s"])): int(r["cluster"])
        for r in csv.DictReader(io.StringIO(text))
    }


def test_retry_embeds_the_fixed_recording_and_clusters_its_deployment_again(
    platform: InProcessPlatform, audio_dir: Path, tmp_path: Path
) -> None:
    p = platform
    job = p.orchestrator.submit_discovery(None, discovery("proj", cluster={"min_cluster_size": 2}))
    p.run()
    # A reviewer labels every cluster of south before the broken file is fixed.
    before = windows_of(p, job, "south")
    names = {c: f"sound {c}" for c in set(before.values())}
    changes = [Change(Target.cluster("south", c), name) for c, name in names.items()]
    p.labels.write(job, "south", changes, "ana", "cluster", expected=0)
    assert p.delivered[stages.CLUSTER] == 3  # two deployments, then linking
    fixed = write_clip(audio_dir / "soundscape.flac", tmp_path / "fixed.wav", 6.0)
    p.upload("proj", "south/broken.wav", fixed)
    p.bus.publish(to_message(job, f"{job}:retry:1", RetryFailed()))
    p.step(stages.EVENTS)
    assert p.jobs.job(job).status == "running"
    asked: list[Message] = []
    p.bus.consume(stages.EMBED, asked.append, idle_timeout_s=0.0)
    assert [read_as(m, EmbedWork).rel for m in asked] == ["south/broken.wav"]
    for m in asked:
        p.bus.publish(m)  # back in the queue, for the stage
    p.run()
    assert p.jobs.job(job).status == "done"
    assert p.jobs.progress(job)["embed"] == {"done": 4}
    assert p.delivered[stages.CLUSTER] == 5  # south clustered again, then linked again
    after = windows_of(p, job, "south")
    assert any(f == "broken.wav" for f, _, _ in after)
    # Clustered again, the labels follow their windows: every window labelled before
    # still carries its label (through its new cluster, or as a window label).
    now = {r.target: r.label for r in p.labels.labels(job, "south")}
    for (file, start, end), cluster in before.items():
        label = now.get(Target.cluster("south", after[(file, start, end)])) or now.get(
            Target.window("south", f"south/{file}", start, end)
        )
        assert label == names[cluster], (file, start)
    carried = [h for h in p.labels.history(job, "south") if h.source == "carried"]
    assert carried and {h.author for h in carried} == {"bdisc"}  # reported in the history


def test_a_cancelled_job_stops_fanning_out(platform: InProcessPlatform) -> None:
    p = platform
    job = p.orchestrator.submit_discovery(None, discovery("proj"))
    p.step(stages.INGEST)
    p.step(stages.EVENTS)  # planned: two embed messages wait (the project's cap), one item
    p.bus.publish(to_message(job, f"{job}:cancel", Cancel()))
    p.step(stages.EVENTS)
    assert p.jobs.job(job).status == "cancelled"
    p.run()  # the embeds still queued are dropped unread, the third is never sent, and
    # nothing is clustered
    assert p.jobs.progress(job)["embed"] == {"running": 2, "pending": 1, "failed": 1}
    assert not list(p.objects.list("embeddings/"))
    assert "cluster" not in p.jobs.progress(job)
    assert p.jobs.job(job).status == "cancelled"
    # A retry does not bring it back (its work would be dropped: it would never end).
    p.bus.publish(to_message(job, f"{job}:retry:1", RetryFailed()))
    p.run()
    assert p.jobs.job(job).status == "cancelled"
    # A finished job is not cancelled: it keeps its outcome (and can be exported).
    done = p.orchestrator.submit_discovery(None, discovery("proj", prefix="north/"))
    p.run()
    p.bus.publish(to_message(done, f"{done}:cancel", Cancel()))
    p.run()
    assert p.jobs.job(done).status == "done"


def test_plan_failure_and_unreadable_work_end_their_jobs(platform: InProcessPlatform) -> None:
    p = platform
    nothing = p.orchestrator.submit_discovery(None, discovery("proj", prefix="nowhere/"))
    job = p.orchestrator.submit_discovery(None, discovery("proj", prefix="north/"))
    p.step(stages.INGEST)
    p.step(stages.EVENTS)
    assert p.jobs.job(nothing).status == "failed"
    assert p.jobs.job(nothing).error == "no recordings under 'nowhere/'"
    # A cluster message that lost its fields (a bug, a half-upgraded sender) is
    # dead-lettered by the stage and fails its job with the reason, not silently.
    broken = Message(stages.CLUSTER, job, f"{job}:bad", {"kind": "cluster", "group": "north"})
    p.bus.publish(broken)
    # A message of the wrong kind for its queue is refused the same way.
    wrong = to_message(job, f"{job}:wrong", Cancel())
    p.bus.publish(Message(stages.EMBED, job, wrong.idempotency_key, wrong.payload))
    p.run()
    record = p.jobs.job(job)
    assert record.status == "failed"
    assert "dead-lettered: MalformedMessage: invalid cluster message" in record.error
    # Its real work went on meanwhile but stopped short of the end (no sound types); a
    # retry drives it from where it stopped to the end.
    assert "link" not in p.jobs.progress(job)
    p.bus.publish(to_message(job, f"{job}:retry:1", RetryFailed()))
    p.run()
    assert p.jobs.job(job).status == "done"
    assert p.jobs.progress(job)["link"] == {"done": 1}


def test_cluster_work_carries_what_the_stage_needs(platform: InProcessPlatform) -> None:
    p = platform
    command = discovery("proj", prefix="north/", review={"montage_cap": 4, "fmax": 8000})
    job = p.orchestrator.submit_discovery(None, command)
    for stage in (stages.INGEST, stages.EVENTS, stages.EMBED, stages.EVENTS):
        p.step(stage)
    asked: list[Message] = []
    p.bus.consume(stages.CLUSTER, asked.append, idle_timeout_s=0.0)
    (work,) = [read_as(m, ClusterWork) for m in asked]
    assert work.group == "north" and work.spec == command.spec
    assert [r.rel for r in work.recordings] == ["north/n1.wav", "north/n2.wav"]
    embedded = {i.key: i.output for i in p.jobs.items(job, stages.EMBED)}
    assert [r.embeddings for r in work.recordings] == [
        embedded["projects/proj/audio/north/n1.wav"],
        embedded["projects/proj/audio/north/n2.wav"],
    ]


class LosingBus(InProcessBus):
    """A bus whose publishes are lost (an orchestrator killed after its commit)."""

    def publish(self, message: Message) -> None:
        pass


def test_a_command_redelivered_after_its_publish_was_lost_is_carried_out(
    platform: InProcessPlatform, data_dir: Path
) -> None:
    p = platform
    table = data_dir / "evaluation" / "base_bnet_labels_CHECKED_300_performance_data.csv"
    p.objects.put_file(files_prefix("proj") + "paper/perf.csv", table)
    request = EvaluationParams(detections="paper/perf.csv", truth="paper/perf.csv")
    command = to_message("ev9", "ev9:submit", SubmitEvaluation(project="proj", request=request))
    lost = Orchestrator(p.jobs, LosingBus(), p.objects, labels=p.labels)
    lost.handle_event(command)  # state committed, work never sent
    assert p.jobs.job("ev9").status == "running"
    p.bus.publish(command)  # the broker redelivers the unacknowledged command
    p.run()
    assert p.jobs.job("ev9").status == "done"


@pytest.mark.slow
def test_a_long_recording_is_embedded_in_parts_equal_to_the_whole(
    tmp_path: Path, model: BirdNetV24, audio_dir: Path
) -> None:
    """A 21-minute recording is planned as three parts, each read from the store by
    ranges; put together in order they are the file's embeddings, bit for bit. A part
    delivered twice finds its result in place."""
    p = InProcessPlatform(tmp_path, CountingModel(model), embed_cap=4)  # all parts at once
    audio, rate = sf.read(audio_dir / "soundscape.flac", dtype="float32")
    local = tmp_path / "long.flac"
    sf.write(local, np.tile(audio, 11)[: 21 * 60 * rate], rate)
    key = p.upload("proj", "north/long.flac", local)
    job = p.orchestrator.submit_discovery(None, discovery("proj"))
    p.step(stages.INGEST)
    p.step(stages.EVENTS)
    asked: list[Message] = []
    p.bus.consume(stages.EMBED, asked.append, idle_timeout_s=0.0)
    works = [read_as(m, EmbedWork) for m in asked]
    assert [(w.recording.first, w.recording.count) for w in works if w.recording] == [
        (0, 200),
        (200, 200),
        (400, None),
    ]
    for message in [*asked, asked[1]]:  # the second part is delivered twice
        p.bus.publish(message)
    p.run()
    assert p.jobs.job(job).status == "done"
    assert counted(p) == 420  # every window once
    items = p.jobs.items(job, stages.EMBED)
    assert [i.key.split("#")[1].split("@")[0] for i in items] == ["0-200", "200-400", "400-end"]
    assert all(i.key.startswith(key + "#") and i.status == "done" for i in items)
    parts = [pq.read_table(p.objects.root / i.output) for i in items]
    joined = pa.concat_tables([t.replace_schema_metadata(None) for t in parts])
    whole = tmp_path / "whole"
    config = RunConfig(whole, AnalysisParams(), progress=False, split_long=False)
    api.embed([local], config, factory=lambda _threads: model)
    reference = pq.read_table(whole / "embeddings" / "long.embeddings.parquet")
    expected = reference.replace_schema_metadata(None).drop_columns(["recording"])
    assert joined.drop_columns(["recording"]).equals(expected)
    assert set(joined.column("recording").to_pylist()) == {"north/long.flac"}
