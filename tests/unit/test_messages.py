"""The typed contract between services: every message round-trips through the wire
format, is refused when it is not what its queue carries, and every work item names its
own failure."""

from __future__ import annotations

import pytest

from bdisc.app import messages as m
from bdisc.app import stages
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.discovery.linking import LinkParams
from bdisc.discovery.recordings import Subset
from bdisc.params import AnalysisParams
from bdisc.ports.message_bus import SCHEMA_VERSION, MalformedMessage, Message

SPEC = DiscoverySpec.from_dict(
    {
        "analysis": {"overlap_s": 1.5, "species": ["Pica pica_Eurasian Magpie"], "top_k": 3},
        "subset": {"hours": "6-9", "start_date": "2023-06-01", "sample": 0.5},
        "prune": {"drop_silence_db": -60, "labels": ["*Engine*"]},
        "cluster": {"min_cluster_size": 4, "selection": "leaf"},
        "link": {"threshold": 0.3},
        "review": {"montage_cap": 12, "fmax": 8000, "audio_per_cluster": 2},
    }
)
RECORDING = m.PlannedRecording(key="projects/p/audio/north/a.wav", group="north")
EVALUATION = m.EvaluationParams(detections="det/", truth="truth.csv", granularity="sound")
STORED = m.StoredResults(
    discovery_job="j1",
    groups=("north",),
    recordings=(
        m.EmbeddedRecording(rel="north/a.wav", embeddings="embeddings/a1.parquet"),
        m.EmbeddedRecording(rel="north/a.wav", embeddings="embeddings/a2.parquet", first=200),
    ),
    labels=(m.SheetLabel(folder="north", target="cluster:3", label="magpie"),),
)
TRAINING = m.TrainParams(head="mlp", hidden=64, balance="class-weights", folds=3, seed=7)
CLASSIFY = m.ClassifyParams(model_id="m1", formats=("csv", "table"), min_conf=0.5)
SEARCH = m.SearchParams(window=m.StoredWindow(recording="north/a.wav", start_s=3.0), top=20)
CLIP = m.SearchParams(example=m.ExampleSpan(path="files/clip.wav", start_s=1.0, end_s=2.5))
SUGGEST = m.SuggestParams(model_id="m1", n=20, strategy="top2", focus="magpie")

EXAMPLES: list[m.Contract] = [
    m.SubmitDiscovery(project="p", prefix="north/", spec=SPEC),
    m.SubmitEvaluation(project="p", request=EVALUATION),
    m.SubmitExport(project="p", discovery_job="j1", options=m.ExportParams(pad_s=0.5)),
    m.SubmitTraining(project="p", discovery_job="j1", options=TRAINING),
    m.SubmitClassify(project="p", discovery_job="j1", options=CLASSIFY),
    m.SubmitSearch(project="p", discovery_job="j1", options=CLIP),
    m.SubmitDuplicates(project="p", discovery_job="j1"),
    m.SubmitSuggest(project="p", discovery_job="j1", options=SUGGEST),
    m.RetryFailed(),
    m.Cancel(),
    m.Planned(
        items=(RECORDING,),
        refused=(m.RefusedRecording(key="k", group="south", error="CorruptAudio: x"),),
        subset={"kept": 1},
        manifest="projects/p/jobs/j/results/recordings.csv",
    ),
    m.PlanFailed(error="no recordings under 'x/'"),
    m.Embedded(key=RECORDING.key, group="north", output="embeddings/a.parquet"),
    m.EmbedFailed(key=RECORDING.key, group="north", error="TooShort: 0.3 s"),
    m.Clustered(group="north", output="projects/p/jobs/j/results/north/"),
    m.ClusterFailed(group="north", error="NotFound: no windows"),
    m.Linked(round="r1", output="projects/p/jobs/j/results/sound_types.csv"),
    m.LinkFailed(round="r1", error="boom"),
    m.Exported(output="projects/p/jobs/j/trainset/manifest.csv", report={"clips": 3}),
    m.ExportFailed(error="NotFound: no sheets"),
    m.Evaluated(output="projects/p/jobs/e/results/evaluation/"),
    m.EvaluateFailed(error="ConfigError: nothing uploaded"),
    m.Trained(output="projects/p/models/t1/", report={"classes": ["magpie"], "best_epoch": 4}),
    m.TrainFailed(error="NotFound: no review sheets"),
    m.Classified(output="projects/p/jobs/c1/results/", report={"detections": 12}),
    m.ClassifyFailed(error="IncompatibleArtifact: another base model"),
    m.Searched(output="projects/p/jobs/j1/results/search-s1/", report={"matches": 20}),
    m.SearchFailed(error="ConfigError: nothing uploaded at files/x.wav"),
    m.DuplicatesFound(output="projects/p/jobs/d1/results/", report={"duplicates": 1}),
    m.DuplicatesFailed(error="boom"),
    m.Suggested(output="projects/p/jobs/j1/results/suggest-g1/", report={"suggested": 20}),
    m.SuggestFailed(error="ConfigError: every window is labelled"),
    m.WorkUnreadable(dead_stage=stages.EMBED, error="dead-lettered: x"),
    m.IngestWork(project="p", prefix="north/", subset=SPEC.subset),
    m.EmbedWork(
        project="p", audio_key=RECORDING.key, rel="north/a.wav", group="north", params=SPEC.params
    ),
    m.ClusterWork(
        project="p",
        group="north",
        recordings=(m.EmbeddedRecording(rel="north/a.wav", embeddings="embeddings/a.parquet"),),
        spec=SPEC,
    ),
    m.LinkWork(project="p", groups=("north", "south"), link=LinkParams(0.3), round="r1"),
    m.ExportWork(
        project="p",
        discovery_job="j1",
        options=m.ExportParams(sample_rate=24_000),
        groups=("north",),
        recordings=(RECORDING,),
    ),
    m.TrainWork(project="p", source=STORED, output="projects/p/models/t1/", options=TRAINING),
    m.ClassifyWork(
        project="p",
        source=STORED,
        output="projects/p/jobs/c1/results/",
        options=CLASSIFY,
        model="projects/p/models/m1/",
    ),
    m.SearchWork(project="p", source=STORED, output="x/search-s1/", options=SEARCH),
    m.DuplicatesWork(project="p", source=STORED, output="x/", options=m.DuplicatesParams()),
    m.SuggestWork(project="p", source=STORED, output="x/suggest-g1/", options=SUGGEST, model="m/"),
    m.EvaluateWork(project="p", request=EVALUATION),
]


def test_every_message_of_the_contract_has_an_example() -> None:
    assert sorted(type(e).__name__ for e in EXAMPLES) == sorted(c.__name__ for c in m.CONTRACT)


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: type(b).__name__)
def test_messages_round_trip_through_the_wire(body: m.Contract) -> None:
    message = m.to_message("job1", "job1:x", body)
    assert message.stage == body.stage
    assert message.payload["kind"] == body.kind
    received = Message.from_bytes(message.to_bytes())
    assert received.version == SCHEMA_VERSION
    assert m.read(received) == body


def test_parameters_arrive_typed() -> None:
    work = m.read(m.to_message("j", "k", EXAMPLES[0]))
    assert isinstance(work, m.SubmitDiscovery)
    assert isinstance(work.spec.params, AnalysisParams)
    assert work.spec.params.species == ("Pica pica_Eurasian Magpie",)
    assert isinstance(work.spec.subset, Subset) and work.spec.subset.hours == (6, 9)
    assert work.spec.cluster.selection == "leaf" and work.spec.montage_cap == 12


def test_work_travels_on_its_stage_and_fails_as_its_own_event() -> None:
    failures = {
        m.IngestWork: m.PlanFailed,
        m.EmbedWork: m.EmbedFailed,
        m.ClusterWork: m.ClusterFailed,
        m.LinkWork: m.LinkFailed,
        m.ExportWork: m.ExportFailed,
        m.EvaluateWork: m.EvaluateFailed,
        m.TrainWork: m.TrainFailed,
        m.ClassifyWork: m.ClassifyFailed,
        m.SearchWork: m.SearchFailed,
        m.DuplicatesWork: m.DuplicatesFailed,
        m.SuggestWork: m.SuggestFailed,
    }
    works = [e for e in EXAMPLES if isinstance(e, m.Work)]
    assert {type(w) for w in works} == set(failures)
    for work in works:
        assert work.stage in stages.WORK_STAGES
        failed = work.failed("why")
        assert type(failed) is failures[type(work)] and failed.error == "why"
    embed = next(w for w in works if isinstance(w, m.EmbedWork))
    assert embed.failed("x") == m.EmbedFailed(key=embed.audio_key, group="north", error="x")
    commands_and_events = [e for e in EXAMPLES if not isinstance(e, m.Work)]
    assert {e.stage for e in commands_and_events} == {stages.EVENTS}


def test_reply_is_keyed_by_the_work_and_the_outcome() -> None:
    work = m.to_message("j", "j:key", EXAMPLES[-1])
    event = m.reply(work, m.Evaluated(output="o"))
    assert (event.stage, event.job_id, event.idempotency_key) == (
        stages.EVENTS,
        "j",
        "j:key:evaluated",
    )


@pytest.mark.parametrize(
    ("stage", "payload", "why"),
    [
        (stages.EMBED, {"kind": "teleport"}, "unknown message kind 'teleport'"),
        (stages.EMBED, {}, "unknown message kind None"),
        (stages.EMBED, {"kind": "cancel"}, "a cancel message on the embed queue"),
        (stages.CLUSTER, {"kind": "cluster", "project": "p"}, "invalid cluster message: group"),
        (
            stages.EVENTS,
            {"kind": "cancel", "surprise": 1},
            "invalid cancel message: surprise: Extra inputs are not permitted",
        ),
        (
            stages.EMBED,
            {
                "kind": "embed",
                "project": "p",
                "audio_key": "k",
                "rel": "a.wav",
                "group": "g",
                "params": {"sensitivity": 5},
            },
            "invalid embed message: sensitivity must be in [0.5, 1.5], got 5",
        ),
        (
            stages.EVENTS,
            {"kind": "submit_discovery", "project": "p", "spec": {"cluster": {"nope": 1}}},
            "invalid submit_discovery message: invalid parameters",
        ),
        (  # a parser's TypeError is a refusal too, not a crash
            stages.EMBED,
            {
                "kind": "embed",
                "project": "p",
                "audio_key": "k",
                "rel": "a.wav",
                "group": "g",
                "params": {"bandpass": {"nope": 1}},
            },
            "invalid embed message: params: Value error, invalid AnalysisParams",
        ),
        (
            stages.INGEST,
            {"kind": "ingest", "project": "p", "subset": {"seed": None}},
            "invalid ingest message: subset: Value error, invalid Subset",
        ),
    ],
)
def test_what_is_not_the_contract_is_refused_with_the_reason(
    stage: str, payload: dict[str, object], why: str
) -> None:
    with pytest.raises(MalformedMessage) as refused:
        m.read(Message(stage, "j", "k", payload))
    assert why in refused.value.message


def test_read_as_refuses_another_type() -> None:
    message = m.to_message("j", "k", m.Cancel())
    assert m.read_as(message, m.Cancel) == m.Cancel()
    with pytest.raises(MalformedMessage, match="expected RetryFailed, got cancel"):
        m.read_as(message, m.RetryFailed)


def test_an_envelope_with_a_broken_trace_is_refused() -> None:
    body = Message(stages.EMBED, "j", "k", {"kind": "cancel"}).to_bytes()
    broken = body.replace(b'"trace": {}', b'"trace": ["not", "headers"]')
    assert broken != body
    with pytest.raises(MalformedMessage, match="not a bdisc message"):
        Message.from_bytes(broken)


def test_an_older_envelope_is_refused_but_can_be_attributed() -> None:
    old = Message(stages.EMBED, "j", "k", {"kind": "embed"}, version=1).to_bytes()
    with pytest.raises(MalformedMessage, match="schema version 1"):
        Message.from_bytes(old)
    assert Message.from_bytes(old, any_version=True).job_id == "j"


def test_a_part_of_a_long_recording_round_trips_through_its_item_key() -> None:
    from bdisc.app.messages import PlannedRecording

    part = PlannedRecording(
        key="projects/p/audio/a#b/x.flac", group="a", first=200, count=200, version="123-ab-4"
    )
    assert part.item == "projects/p/audio/a#b/x.flac#200-400@123-ab-4"
    assert PlannedRecording.from_item(part.item, "a") == part
    last = PlannedRecording(key="k.wav", group="g", first=400, version="9-e")
    assert PlannedRecording.from_item(last.item, "g") == last and last.item.endswith("#400-end@9-e")
    whole = PlannedRecording(key="projects/p/audio/x#1-2@v.wav", group="g")
    assert whole.item == whole.key and PlannedRecording.from_item(whole.item, "g") == whole


def test_a_search_takes_exactly_one_example_and_a_span_that_runs_forward() -> None:
    window = m.StoredWindow(recording="north/a.wav", start_s=0.0)
    clip = m.ExampleSpan(path="files/c.wav")
    for broken in ({}, {"window": window, "example": clip}):
        with pytest.raises(ValueError, match="give one example"):
            m.SearchParams(**broken)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="end_s must be after start_s"):
        m.ExampleSpan(path="files/c.wav", start_s=2.0, end_s=1.0)
    with pytest.raises(ValueError, match="pattern"):
        m.ExampleSpan(path="../etc/passwd")
    for sneaky in ("files/../audio/x.wav", "audio/", "files//x.wav"):
        with pytest.raises(ValueError, match="invalid object key"):
            m.ExampleSpan(path=sneaky)
    # On the wire, the same rule: a search work with two examples is refused.
    body = m.payload(m.SearchWork(project="p", source=STORED, output="x/", options=SEARCH))
    body["options"]["example"] = {"path": "files/c.wav"}
    message = Message(stages.TRAIN, "j", "k", body)
    with pytest.raises(MalformedMessage, match="invalid search message: options: Value error"):
        m.read(message)
