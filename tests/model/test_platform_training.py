"""The training stage on the platform, in one process (the orchestrator and every stage on
the in-process bus, the local object store, SQLite): from a discovery job over real
recordings (tests/data/discovery: Screaming Piha, Long-billed Hermit, noise beds) and
labels kept in the label store, train a model, classify the stored embeddings with it,
search by example (twice: the index kept beside the results is updated, not rebuilt),
list duplicates, suggest windows to label, and export a labelled search group."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bdisc.app import stages
from bdisc.app.keys import audio_prefix, job_results_prefix, models_prefix, trainset_prefix
from bdisc.app.messages import (
    ClassifyParams,
    Contract,
    DuplicatesParams,
    ExampleSpan,
    ExportParams,
    Searched,
    SearchParams,
    StoredWindow,
    SubmitClassify,
    SubmitDuplicates,
    SubmitExport,
    SubmitSearch,
    SubmitSuggest,
    SubmitTraining,
    SuggestParams,
    TrainParams,
    read,
    to_message,
)
from bdisc.model.birdnet import BirdNetV24
from bdisc.params import AnalysisParams
from bdisc.ports.label_store import Change, Target
from bdisc.ports.message_bus import Message

from ..commands import discovery
from ..inprocess_platform import InProcessPlatform

pytestmark = pytest.mark.model

PIHA, HERMIT, NOISE = "Screaming Piha", "Long-billed Hermit", "Noise"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, model: BirdNetV24, data_dir: Path
) -> tuple[InProcessPlatform, str]:
    """A finished discovery job (1.5-s overlap) over every recording of
    tests/data/discovery, plus one noise bed uploaded twice (the duplicate)."""
    p = InProcessPlatform(tmp_path_factory.mktemp("platform"), model)
    source = data_dir / "discovery"
    for path in sorted(source.glob("*/*")):
        p.upload("proj", path.relative_to(source).as_posix(), path)
    p.upload("proj", "noise/street_again.flac", source / "noise" / "street.flac")
    # named as pst_cafe.flac but for its extension: refused, as a local run refuses it
    p.upload("proj", "noise/pst_cafe.wav", source / "hermit_site" / "lbh1.wav")
    job = p.orchestrator.submit_discovery(
        None, discovery("proj", analysis=AnalysisParams(overlap_s=1.5))
    )
    p.run()
    assert p.jobs.job(job).status == "done", p.jobs.job(job).error
    return p, job


def rows_of(p: InProcessPlatform, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(p.objects.get_bytes(key).decode())))


def submit(p: InProcessPlatform, job_id: str, command: Contract) -> list[Contract]:
    """Run a command to its end; the events the orchestrator heard meanwhile."""
    heard: list[Contract] = []
    handle = p.handlers[stages.EVENTS]

    def hearing(message: Message) -> None:
        heard.append(read(message))
        handle(message)

    p.handlers[stages.EVENTS] = hearing
    try:
        p.bus.publish(to_message(job_id, f"{job_id}:submit", command))
        p.run()
    finally:
        p.handlers[stages.EVENTS] = handle
    return heard


def done(p: InProcessPlatform, job_id: str) -> None:
    record = p.jobs.job(job_id)
    assert (record.status, record.error) == ("done", ""), record.error


def test_from_labels_to_a_model_detections_matches_and_suggestions(
    platform: tuple[InProcessPlatform, str],
) -> None:
    p, job = platform
    results = job_results_prefix("proj", job)
    clash = [i for i in p.jobs.items(job, stages.EMBED) if i.status == "failed"]
    assert [i.key.rsplit("/audio/", 1)[1] for i in clash] == ["noise/pst_cafe.wav"]
    assert clash[0].error.startswith("NameClash: noise/pst_cafe.wav has the same name as")
    # The reviewer labels: every cluster of the Piha site (its noise stays unlabelled);
    # the Hermit's windows (not the Hummingbird's) and the noise beds' one by one.
    piha = rows_of(p, results + "piha_site/clusters.csv")
    clusters = sorted({int(r["cluster"]) for r in piha if int(r["cluster"]) >= 0})
    p.labels.write(
        job,
        "piha_site",
        [Change(Target.cluster("piha_site", c), PIHA) for c in clusters],
        "ana",
        "cluster",
        None,
    )
    expected = {PIHA: sum(int(r["cluster"]) >= 0 for r in piha)}
    for folder, label in (("hermit_site", HERMIT), ("noise", NOISE)):
        rows = [r for r in rows_of(p, f"{results}{folder}/clusters.csv") if "cuvi" not in r["file"]]
        changes = [
            Change(
                Target.window(
                    folder, f"{folder}/{r['file']}", float(r["start_s"]), float(r["end_s"])
                ),
                label,
            )
            for r in rows
        ]
        p.labels.write(job, folder, changes, "ana", "window", None)
        expected[label] = len(rows)
    assert min(expected.values()) >= 10

    submit(
        p,
        "train1",
        SubmitTraining(project="proj", discovery_job=job, options=TrainParams(val_fraction=0.4)),
    )
    done(p, "train1")
    model = models_prefix("proj", "train1")
    meta = json.loads(p.objects.get_bytes(model + "model.json"))
    assert meta["classes"] == [HERMIT, PIHA]  # Noise is the negative class
    assert meta["training_set"]["windows_per_label"] == expected
    assert meta["training_set"]["source"] == f"discovery job {job}"
    assert meta["embedding"]["overlap_s"] == 1.5
    stored = set(p.objects.list(model))
    for name in ("head.npz", "metrics.json", "confusion.csv", "CustomClassifier.tflite"):
        assert model + name in stored, name
    report = json.loads(p.objects.get_bytes(model + "metrics.json"))
    by_class = {c["label"]: c for c in report["classes"]}
    assert by_class[PIHA]["average_precision"] >= 0.9, by_class

    # Classify every stored window with it: BirdNET-Analyzer's tables, per recording.
    submit(
        p,
        "cls1",
        SubmitClassify(
            project="proj", discovery_job=job, options=ClassifyParams(model_id="train1")
        ),
    )
    done(p, "cls1")
    out = job_results_prefix("proj", "cls1")
    tables = [k for k in p.objects.list(out) if k.endswith(".BirdNET.results.csv")]
    assert len(tables) == 17  # every recording, the copy included
    piha_hits = [
        r for k in tables if "/piha_site/" in k for r in rows_of(p, k) if r["Common name"] == PIHA
    ]
    assert len(piha_hits) >= 20

    # Search by example: a Piha window; its own window first, Piha windows nearest.
    example = next(r for r in piha if int(r["cluster"]) >= 0)
    window = StoredWindow(
        recording=f"piha_site/{example['file']}", start_s=float(example["start_s"])
    )
    heard = submit(
        p,
        "s1",
        SubmitSearch(
            project="proj", discovery_job=job, options=SearchParams(window=window, top=10)
        ),
    )
    done(p, "s1")
    first = next(e for e in heard if isinstance(e, Searched))
    assert first.report["index_rebuilt"] is True and first.report["matches"] == 10
    group = results + "search-s1/"
    matches = rows_of(p, group + "matches.csv")
    assert (matches[0]["recording"], float(matches[0]["start_s"])) == (
        window.recording,
        window.start_s,
    )
    assert float(matches[0]["distance"]) < 1e-3
    assert sum(m["folder"] == "piha_site" for m in matches) >= 8
    assert {group + n for n in ("montage.png", "clusters.csv", "review.csv")} <= set(
        p.objects.list(group)
    )
    assert results + "index/manifest.json" in set(p.objects.list(results + "index/"))
    heard = submit(
        p,
        "s2",
        SubmitSearch(project="proj", discovery_job=job, options=SearchParams(window=window, top=5)),
    )
    again = next(e for e in heard if isinstance(e, Searched))
    assert (
        again.report["index_rebuilt"] is False
        and again.report["windows"] == (first.report["windows"])
    )

    # The copy of a noise bed is found, with its evidence; nothing is deleted.
    submit(
        p, "dup1", SubmitDuplicates(project="proj", discovery_job=job, options=DuplicatesParams())
    )
    done(p, "dup1")
    found = rows_of(p, job_results_prefix("proj", "dup1") + "duplicates.csv")
    assert [(r["recording_a"], r["recording_b"], r["kind"]) for r in found] == [
        ("noise/street.flac", "noise/street_again.flac", "recording")
    ], found
    assert p.objects.exists(audio_prefix("proj") + "noise/street_again.flac")
    # Discovered again without the copy (nothing embedded again): its windows are in no
    # deployment's clusters, and the deployment's settings count them as excluded.
    again = p.orchestrator.submit_discovery(
        None,
        discovery("proj", analysis=AnalysisParams(overlap_s=1.5), exclude_duplicates="dup1"),
    )
    p.run()
    done(p, again)
    noise_again = rows_of(p, job_results_prefix("proj", again) + "noise/clusters.csv")
    assert noise_again and not any(r["file"] == "street_again.flac" for r in noise_again)
    assert any(r["file"] == "street.flac" for r in noise_again)
    refused = p.orchestrator.submit_discovery(None, discovery("proj", exclude_duplicates="nope"))
    p.run()
    assert (p.jobs.job(refused).status, p.jobs.job(refused).error) == (
        "failed",
        "no duplicates job nope",
    )
    # Trained again without the copy: its windows are not in the training set.
    copies = sum(
        r["file"] == "street_again.flac" for r in rows_of(p, results + "noise/clusters.csv")
    )
    without = TrainParams(val_fraction=0.4, exclude_duplicates="dup1")
    submit(p, "train2", SubmitTraining(project="proj", discovery_job=job, options=without))
    done(p, "train2")
    meta2 = json.loads(p.objects.get_bytes(models_prefix("proj", "train2") + "model.json"))
    assert copies > 0 and meta2["training_set"]["excluded"]["windows"] == copies
    assert meta2["training_set"]["windows_per_label"] == {
        **expected,
        NOISE: expected[NOISE] - copies,
    }

    # Suggestions: a review group of windows nobody labelled.
    submit(
        p,
        "sug1",
        SubmitSuggest(
            project="proj", discovery_job=job, options=SuggestParams(model_id="train1", n=5)
        ),
    )
    done(p, "sug1")
    suggested = rows_of(p, results + "suggest-sug1/clusters.csv")
    assert len(suggested) == 5
    labelled_windows = {
        (r["file"], float(r["start_s"]))
        for r in rows_of(p, results + "hermit_site/clusters.csv")
        if "cuvi" not in r["file"]
    }
    assert not {(r["file"], float(r["start_s"])) for r in suggested} & labelled_windows

    # The search group, labelled like a cluster, and a window of the suggestions (named
    # by its deployment's recording, as the review app names it) export with the rest.
    p.labels.write(
        job, "search-s1", [Change(Target.cluster("search-s1", 1), PIHA)], "ana", "cluster", None
    )
    one = suggested[0]
    window = Target.window(
        "suggest-sug1",
        f"{one['folder']}/{one['file']}",
        float(one["start_s"]),
        float(one["end_s"]),
    )
    p.labels.write(job, "suggest-sug1", [Change(window, "Odd one")], "ana", "window", None)
    submit(p, "exp1", SubmitExport(project="proj", discovery_job=job, options=ExportParams()))
    done(p, "exp1")
    clips = [k for k in p.objects.list(trainset_prefix("proj", job)) if k.endswith(".wav")]
    assert sum(f"/{PIHA}/" in k for k in clips) >= expected[PIHA]
    odd = [k.rsplit("/", 1)[1] for k in clips if "/Odd one/" in k]
    assert len(odd) == 1 and odd[0].startswith(f"{one['folder']}__"), odd


def test_refusals_fail_their_job_with_the_reason(platform: tuple[InProcessPlatform, str]) -> None:
    p, job = platform
    submit(
        p,
        "cls9",
        SubmitClassify(
            project="proj", discovery_job=job, options=ClassifyParams(model_id="f" * 32)
        ),
    )
    assert p.jobs.job("cls9").status == "failed"
    assert p.jobs.job("cls9").error == f"no model {'f' * 32}"
    submit(p, "train9", SubmitTraining(project="other", discovery_job=job))
    assert p.jobs.job("train9").status == "failed"
    assert p.jobs.job("train9").error == f"no discovery job {job}"
    # Leaving out the copies of a job that did not look for them.
    not_dup = TrainParams(exclude_duplicates="cls9")
    submit(p, "train7", SubmitTraining(project="proj", discovery_job=job, options=not_dup))
    assert p.jobs.job("train7").error == f"no duplicates job cls9 of discovery job {job}"
    # An example that was never uploaded: the stage fails the job, saying so.
    missing = SearchParams(example=ExampleSpan(path="files/nope.wav"))
    submit(p, "s9", SubmitSearch(project="proj", discovery_job=job, options=missing))
    assert p.jobs.job("s9").status == "failed"
    assert "nothing uploaded at files/nope.wav" in p.jobs.job("s9").error
