"""The gateway over real S3, RabbitMQ and PostgreSQL: keys, isolation, bad uploads, and a
job from upload to labelled review sheet (stages run in-process on the same queues)."""

from __future__ import annotations

import asyncio
import io
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from PIL import Image
from prometheus_client import REGISTRY, generate_latest

from bdisc import tracing
from bdisc.app import stages
from bdisc.app.evaluate_stage import EvaluateStage
from bdisc.app.export_stage import ExportStage
from bdisc.app.orchestrator import Orchestrator
from bdisc.app.stage_handler import stage_handler
from bdisc.model.birdnet import BirdNetV24
from gateway.app import create_app
from gateway.deps import Deps

from ..gateway_helpers import run_discovery, upload
from ..model.helpers import write_clip


def _asgi(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, int]:
    """(status, body chunks the app pulled) of one request, the body sent in 64-KiB chunks
    (no Content-Length unless ``headers`` gives one)."""
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    pulled = 0
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > len(chunks):
            return {"type": "http.disconnect"}
        return {
            "type": "http.request",
            "body": chunks[pulled - 1],
            "more_body": pulled < len(chunks),
        }

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"path=siteA/x.wav",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return statuses[0], pulled


@pytest.mark.integration
def test_bodies_are_refused_before_they_are_read(
    gateway: tuple[TestClient, Deps, dict[str, str]],
) -> None:
    """The key is checked and the size capped before a byte of the body is read: no
    stranger fills the gateway's memory or disk with a request it will refuse."""
    client, _, k = gateway
    app, a = client.app, k["alpha"]
    big = b"x" * (5 << 20)  # above the 3-MiB upload limit of this gateway
    for headers in ({}, {"X-API-Key": "bd_nope"}, {"X-API-Key": k["beta-key"]}):
        status, pulled = _asgi(app, "POST", f"/v1/projects/{a}/audio", headers, big)
        assert (status, pulled) in ((401, 0), (403, 0)), headers
    mine = {"X-API-Key": k["alpha-key"]}
    # Too large by Content-Length: refused at once.
    sized = {**mine, "Content-Length": str(len(big))}
    assert _asgi(app, "POST", f"/v1/projects/{a}/audio", sized, big) == (413, 0)
    # Streamed without a length: refused once the count passes the limit.
    form = {**mine, "Content-Type": "multipart/form-data; boundary=XyZ"}
    part = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    status, pulled = _asgi(app, "POST", f"/v1/projects/{a}/audio", form, part + big)
    assert status == 413 and pulled <= (3 << 20) // 65536 + 2
    # JSON bodies are capped far lower (1 MiB).
    job = {**mine, "Content-Type": "application/json"}
    status, _ = _asgi(app, "POST", f"/v1/projects/{a}/jobs", job, b" " * (2 << 20))
    assert status == 413
    assert (
        client.post(f"/v1/projects/{a}/jobs", headers=mine, json={"prefix": "x/"}).status_code < 500
    )


@pytest.mark.integration
def test_keys_isolation_and_bad_uploads(
    gateway: tuple[TestClient, Deps, dict[str, str]], audio_dir: Path, tmp_path: Path
) -> None:
    client, deps, k = gateway
    a, b = k["alpha"], k["beta"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert "bdisc" in client.get("/openapi.json").json()["info"]["title"]
    assert client.get(f"/v1/projects/{a}/audio").status_code == 401
    assert (
        client.get(f"/v1/projects/{a}/audio", headers={"X-API-Key": "bd_nope"}).status_code == 401
    )
    assert (
        client.get(f"/v1/projects/{a}/audio", headers={"X-API-Key": k["beta-key"]}).status_code
        == 403
    )
    good = write_clip(audio_dir / "soundscape.flac", tmp_path / "g.wav", 6.0).read_bytes()
    assert upload(client, a, k["alpha-key"], "siteA/20230604_053000.wav", good) == 201
    assert upload(client, b, k["alpha-key"], "siteA/x.wav", good) == 403  # not its project
    assert upload(client, a, k["alpha-key"], "notes.txt", b"hello") == 415
    assert upload(client, a, k["alpha-key"], "siteA/empty.wav", b"") == 422
    assert upload(client, a, k["alpha-key"], "siteA/text.wav", b"not audio" * 100) == 422
    assert upload(client, a, k["alpha-key"], "siteA/cut.wav", good[: len(good) // 3]) == 201
    assert upload(client, a, k["alpha-key"], "../escape.wav", good) == 400
    assert upload(client, a, k["alpha-key"], "siteA//x.wav", good) == 400
    assert upload(client, a, k["alpha-key"], "siteA/big.wav", good * 6) == 413
    listed = client.get(f"/v1/projects/{a}/audio", headers={"X-API-Key": k["alpha-key"]})
    assert listed.json() == {"recordings": ["siteA/20230604_053000.wav", "siteA/cut.wav"]}
    assert client.get(f"/v1/projects/{b}/audio", headers={"X-API-Key": k["beta-key"]}).json() == {
        "recordings": []
    }
    assert sorted(deps.objects.list()) == [
        f"projects/{a}/audio/siteA/20230604_053000.wav",
        f"projects/{a}/audio/siteA/cut.wav",
    ]
    auth_a, auth_b = {"X-API-Key": k["alpha-key"]}, {"X-API-Key": k["beta-key"]}

    # Large files: POST straight to S3 with a presigned form, then register. S3 itself
    # holds the form to its key and to the gateway's upload limit.
    def presign(path: str) -> dict[str, Any]:
        answer = client.post(f"/v1/projects/{a}/audio:presign", json={"path": path}, headers=auth_a)
        assert answer.status_code == 200, answer.text
        form: dict[str, Any] = answer.json()["upload"]
        assert form["max_bytes"] == deps.max_upload_bytes
        return form

    def post_form(form: dict[str, Any], data: bytes, **fields: str) -> int:
        sent = httpx.post(
            form["url"], data={**form["fields"], **fields}, files={"file": ("f", data)}
        )
        return sent.status_code

    big = presign("siteB/big.wav")
    assert post_form(big, good) == 204
    assert post_form(presign("siteB/huge.wav"), good * 6) == 400  # EntityTooLarge
    assert post_form(presign("siteB/nothing.wav"), b"") == 400
    other = f"projects/{a}/audio/siteB/elsewhere.wav"
    assert post_form(big, good, key=other) == 403  # the form is for its key only
    assert post_form(presign("siteB/junk.wav"), b"not audio") == 204
    for refused in ("huge", "nothing", "elsewhere"):
        assert not deps.objects.exists(f"projects/{a}/audio/siteB/{refused}.wav")
    registered = client.post(
        f"/v1/projects/{a}/audio:register", json={"prefix": "siteB/"}, headers=auth_a
    ).json()
    assert [r["path"] for r in registered["accepted"]] == ["siteB/big.wav"]
    assert [r["path"] for r in registered["refused"]] == ["siteB/junk.wav"]
    assert not deps.objects.exists(f"projects/{a}/audio/siteB/junk.wav")
    assert (
        client.post(
            f"/v1/projects/{a}/audio:presign", json={"path": "../x.wav"}, headers=auth_a
        ).status_code
        == 400
    )
    hook = client.put(f"/v1/projects/{a}/webhook", json={"url": "ftp://x"}, headers=auth_a)
    assert hook.status_code == 422
    for internal in ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:15672/"):
        hook = client.put(f"/v1/projects/{a}/webhook", json={"url": internal}, headers=auth_a)
        assert hook.status_code == 422 and "internal address" in hook.json()["message"]
    public = "https://93.184.215.14/h"  # (an address: this machine resolves no names)
    hook = client.put(f"/v1/projects/{a}/webhook", json={"url": public}, headers=auth_a)
    assert hook.status_code == 200 and len(hook.json()["secret"]) > 30
    assert deps.projects.webhook(a) == (public, hook.json()["secret"])
    assert (
        client.put(
            f"/v1/projects/{a}/webhook", json={"url": "https://evil"}, headers=auth_b
        ).status_code
        == 403
    )
    bad = client.post(
        f"/v1/projects/{a}/jobs",
        json={"analysis": {"sensitivity": 9}},
        headers={"X-API-Key": k["alpha-key"]},
    )
    assert bad.status_code == 422 and bad.json()["error"] == "ConfigError"
    for wrong in (
        {"subset": {"hours": "25-3"}},
        {"subset": {"start_date": "June"}},
        {"prune": {"min_conf": 2}},
        {"prune": {"colour": "red"}},
        {"review": {"montage_cap": 0}},
        {"cluster": {"min_cluster_size": "many"}},
    ):
        bad = client.post(f"/v1/projects/{a}/jobs", json=wrong, headers=auth_a)
        assert bad.status_code == 422, wrong

    # Spectrogram tiles through the gateway, rendered by the gRPC Spectrogram service.
    tile = client.get(
        f"/v1/projects/{a}/spectrogram",
        params={"path": "siteA/20230604_053000.wav", "start_s": 0, "end_s": 3, "width": 200},
        headers=auth_a,
    )
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(tile.content)).size == (200, 240)

    def tile_status(path: str, end_s: float, headers: dict[str, str]) -> int:
        query = {"path": path, "start_s": 0, "end_s": end_s}
        url = f"/v1/projects/{a}/spectrogram"
        return client.get(url, params=query, headers=headers).status_code

    assert tile_status("siteA/none.wav", 3, auth_a) == 404  # NOT_FOUND from the gRPC service
    assert tile_status("siteA/20230604_053000.wav", 300, auth_a) == 422  # INVALID_ARGUMENT
    assert tile_status("siteA/20230604_053000.wav", 3, auth_b) == 403
    segments = [{"path": "siteA/20230604_053000.wav", "start_s": 0, "end_s": 3}] * 3
    grid = client.post(
        f"/v1/projects/{a}/montage", json={"title": "x", "segments": segments}, headers=auth_a
    )
    assert grid.status_code == 200 and grid.content.startswith(b"\x89PNG")
    assert (
        client.post(f"/v1/projects/{a}/montage", json={"segments": []}, headers=auth_a).status_code
        == 422
    )


@pytest.mark.model
@pytest.mark.integration
def test_job_from_upload_to_labelled_review(
    gateway: tuple[TestClient, Deps, dict[str, str]],
    model: BirdNetV24,
    audio_dir: Path,
    tmp_path: Path,
) -> None:
    client, deps, k = gateway
    a, key = k["alpha"], k["alpha-key"]
    auth = {"X-API-Key": key}
    for site in ("north", "south"):
        for i in range(2):
            clip = write_clip(
                audio_dir / "soundscape.flac", tmp_path / f"{site}{i}.wav", 9.0 + 3 * i
            )
            assert upload(client, a, key, f"{site}/r{i}.wav", clip.read_bytes()) == 201
    created = client.post(
        f"/v1/projects/{a}/jobs", headers=auth, json={"cluster": {"min_cluster_size": 2}}
    )
    assert created.status_code == 202
    job = created.json()["job_id"]
    # Visible at once, whatever the orchestrator's backlog: queued until it is taken.
    queued = client.get(f"/v1/projects/{a}/jobs/{job}", headers=auth)
    assert queued.status_code == 200 and queued.json()["status"] == "queued"
    # A subset that keeps nothing (no timestamps in these names) fails at planning.
    empty = client.post(
        f"/v1/projects/{a}/jobs", headers=auth, json={"subset": {"hours": "6-9"}}
    ).json()["job_id"]

    orchestrator = run_discovery(deps, model)

    status = client.get(f"/v1/projects/{a}/jobs/{job}", headers=auth).json()
    assert status["status"] == "done"
    assert status["progress"] == {
        "ingest": {"done": 1},
        "embed": {"done": 4},
        "cluster": {"done": 2},
        "link": {"done": 1},
    }
    refused = client.get(f"/v1/projects/{a}/jobs/{empty}", headers=auth).json()
    assert refused["status"] == "failed" and "no_timestamp=4" in refused["error"]
    other = {"X-API-Key": k["beta-key"]}
    assert client.get(f"/v1/projects/{k['beta']}/jobs/{job}", headers=other).status_code == 404

    files = client.get(f"/v1/projects/{a}/jobs/{job}/results", headers=auth).json()["files"]
    assert {"north/clusters.csv", "north/review.csv", "south/map.png", "sound_types.csv"} <= set(
        files
    )
    with urllib.request.urlopen(files["north/clusters.csv"]) as response:
        assert response.read().startswith(b"folder,file,start_s")

    sheet = client.get(f"/v1/projects/{a}/jobs/{job}/review/north", headers=auth).json()
    clusters = [int(r["Cluster"]) for r in sheet]
    put = client.put(
        f"/v1/projects/{a}/jobs/{job}/review/north",
        headers=auth,
        json=[{"Folder": "north", "Cluster": clusters[0], "Label": "chickadee"}],
    )
    assert put.status_code == 200 and put.json() == {"labelled": 1}
    text = client.get(
        f"/v1/projects/{a}/jobs/{job}/review/north", headers=auth, params={"format": "csv"}
    ).text
    assert "chickadee" in text and text.startswith("Folder,Cluster,Label")
    wrong = client.put(
        f"/v1/projects/{a}/jobs/{job}/review/north",
        headers=auth,
        json=[{"Folder": "north", "Cluster": 999, "Label": "x"}],
    )
    assert wrong.status_code == 422

    # Training data: the labelled cluster's windows become clips, one folder per label.
    exporter = stage_handler(deps.bus, ExportStage(deps.objects).routes)

    def export() -> dict[str, object]:
        export_job = client.post(
            f"/v1/projects/{a}/jobs/{job}/export", headers=auth, json={}
        ).json()["job_id"]
        for stage, handler in (
            (stages.EVENTS, orchestrator.handle_event),
            (stages.EXPORT, exporter),
            (stages.EVENTS, orchestrator.handle_event),
        ):
            deps.bus.consume(stage, handler, idle_timeout_s=1.0)
        done = client.get(f"/v1/projects/{a}/jobs/{export_job}", headers=auth).json()
        assert done["status"] == "done", done
        clips = client.get(f"/v1/projects/{a}/jobs/{job}/clips", headers=auth).json()
        return {str(c["clip"]): c for c in clips["clips"]}

    members = sheet[0]["Size"]
    first = export()
    assert len(first) == int(members) and {c["label"] for c in first.values()} == {"chickadee"}
    some = next(iter(first.values()))
    with urllib.request.urlopen(some["url"]) as response:
        samples, rate = sf.read(io.BytesIO(response.read()))
    assert rate == 48_000 and len(samples) == 3 * 48_000
    # The reviewer renames the label: the clips move, nothing is cut again or left behind.
    client.put(
        f"/v1/projects/{a}/jobs/{job}/review/north",
        headers=auth,
        json=[{"Folder": "north", "Cluster": clusters[0], "Label": "Poecile"}],
    )
    second = export()
    assert {n.replace("Poecile/", "chickadee/") for n in second} == set(first)
    prefix = f"projects/{a}/jobs/{job}/trainset/"
    stored = {k[len(prefix) :] for k in deps.objects.list(prefix)}
    assert stored == set(second) | {"manifest.csv"}
    assert deps.jobs.items(job, stages.EMBED)  # the discovery job is untouched
    # A discovery job that clustered nothing has nothing to export: a failed export job.
    refused = client.post(f"/v1/projects/{a}/jobs/{empty}/export", headers=auth, json={})
    deps.bus.consume(stages.EVENTS, orchestrator.handle_event, idle_timeout_s=1.0)
    answer = client.get(f"/v1/projects/{a}/jobs/{refused.json()['job_id']}", headers=auth).json()
    assert answer["status"] == "failed" and "no clusters to export" in answer["error"]


@pytest.mark.integration
def test_evaluation_job_reproduces_the_paper_through_the_api(
    gateway: tuple[TestClient, Deps, dict[str, str]], data_dir: Path
) -> None:
    client, deps, k = gateway
    a, auth = k["alpha"], {"X-API-Key": k["alpha-key"]}
    ev = data_dir / "evaluation"
    for name, path in (
        ("paper/performance_data.csv", ev / "base_bnet_labels_CHECKED_300_performance_data.csv"),
    ):
        response = client.post(
            f"/v1/projects/{a}/files",
            params={"path": name},
            headers=auth,
            files={"file": ("f", path.read_bytes())},
        )
        assert response.status_code == 201
    job = client.post(
        f"/v1/projects/{a}/evaluations",
        headers=auth,
        json={
            "detections": "paper/performance_data.csv",
            "truth": "paper/performance_data.csv",
            "threshold": 0.25,
        },
    ).json()["job_id"]
    orchestrator = Orchestrator(deps.jobs, deps.bus, deps.objects, labels=deps.labels)
    evaluator = stage_handler(deps.bus, EvaluateStage(deps.objects).routes)
    for stage, handler in (
        (stages.EVENTS, orchestrator.handle_event),
        (stages.EVALUATE, evaluator),
        (stages.EVENTS, orchestrator.handle_event),
    ):
        deps.bus.consume(stage, handler, idle_timeout_s=1.0)
    status = client.get(f"/v1/projects/{a}/jobs/{job}", headers=auth).json()
    assert status["status"] == "done", status
    files = client.get(f"/v1/projects/{a}/jobs/{job}/results", headers=auth).json()["files"]
    assert {
        "evaluation/per_species.csv",
        "evaluation/report.md",
        "evaluation/pr_curves.png",
    } <= set(files)
    with urllib.request.urlopen(files["evaluation/per_species.csv"]) as response:
        rows = response.read().decode().splitlines()
    gwfg = next(r for r in rows if r.startswith("GWFG,")).split(",")
    assert gwfg[1:5] == ["19", "233", "1", "93"]  # the paper's GWFG: TP, TN, FP, FN
    # A request naming nothing uploaded ends as a failed job, not a stuck one.
    bad = client.post(
        f"/v1/projects/{a}/evaluations",
        headers=auth,
        json={"detections": "nothing/", "truth": "paper/performance_data.csv"},
    ).json()["job_id"]
    for stage, handler in (
        (stages.EVENTS, orchestrator.handle_event),
        (stages.EVALUATE, evaluator),
        (stages.EVENTS, orchestrator.handle_event),
    ):
        deps.bus.consume(stage, handler, idle_timeout_s=1.0)
    failed = client.get(f"/v1/projects/{a}/jobs/{bad}", headers=auth).json()
    assert failed["status"] == "failed" and "nothing uploaded" in failed["error"]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span of this process, kept in memory (as an OTLP collector would get them)."""
    exporter = InMemorySpanExporter()
    assert tracing.setup("bdisc-test", exporter=exporter)
    yield exporter
    tracing.setup("bdisc-test")  # off again


@pytest.mark.integration
def test_one_job_is_one_trace_across_gateway_orchestrator_and_workers(
    gateway: tuple[TestClient, Deps, dict[str, str]],
    spans: InMemorySpanExporter,
    model: BirdNetV24,
    audio_dir: Path,
    tmp_path: Path,
) -> None:
    client, deps, k = gateway
    a, auth = k["alpha"], {"X-API-Key": k["alpha-key"]}
    for site in ("north", "south"):
        clip = write_clip(audio_dir / "soundscape.flac", tmp_path / f"{site}.wav", 6.0)
        assert upload(client, a, k["alpha-key"], f"{site}/r.wav", clip.read_bytes()) == 201
    spans.clear()
    job = client.post(f"/v1/projects/{a}/jobs", headers=auth, json={}).json()["job_id"]
    run_discovery(deps, model)
    assert deps.jobs.job(job).status == "done"

    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name == "POST /v1/projects/{project}/jobs")
    trace_id = request.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    names = sorted(s.name for s in in_trace)
    assert names == sorted(
        [
            "POST /v1/projects/{project}/jobs",  # the gateway
            "orchestrator submit_discovery",
            "ingest ingest",
            "orchestrator planned",
            *["embed embed", "orchestrator embedded"] * 2,  # two recordings
            *["cluster cluster", "orchestrator clustered"] * 2,  # two deployments
            "cluster link",
            "orchestrator linked",
        ]
    )
    by_id = {s.context.span_id: s for s in in_trace}
    for s in in_trace:  # one tree: every span but the request has its parent in the trace
        if s is not request:
            assert s.parent is not None and s.parent.span_id in by_id, s.name
    assert {s.attributes["job_id"] for s in in_trace if s is not request} == {job}
    assert {s.resource.attributes["service.name"] for s in in_trace} == {"bdisc-test"}

    # A tile: the caller's traceparent -> the gateway -> gRPC metadata -> the service.
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    spans.clear()
    tile = client.get(
        f"/v1/projects/{a}/spectrogram",
        params={"path": "north/r.wav", "start_s": 0, "end_s": 3},
        headers={**auth, "traceparent": caller},
    )
    assert tile.status_code == 200
    rendered = {s.name: s for s in spans.get_finished_spans()}
    server = rendered["bdisc.v1.Spectrogram/RenderTile"]
    client_span = rendered["Spectrogram/RenderTile"]
    assert {format(s.context.trace_id, "032x") for s in rendered.values()} == {caller[3:35]}
    assert server.parent is not None and server.parent.span_id == client_span.context.span_id
    assert rendered["GET /v1/projects/{project}/spectrogram"].parent.span_id == int(
        caller[36:52], 16
    )


@pytest.mark.integration
def test_labels_are_data_with_revisions_history_undo_and_sheets(
    gateway: tuple[TestClient, Deps, dict[str, str]],
    model: BirdNetV24,
    audio_dir: Path,
    tmp_path: Path,
) -> None:
    client, deps, k = gateway
    a, auth = k["alpha"], {"X-API-Key": k["alpha-key"]}
    for i in range(2):
        clip = write_clip(audio_dir / "soundscape.flac", tmp_path / f"r{i}.wav", 9.0)
        assert upload(client, a, k["alpha-key"], f"north/r{i}.wav", clip.read_bytes()) == 201
    job = client.post(
        f"/v1/projects/{a}/jobs", headers=auth, json={"cluster": {"min_cluster_size": 2}}
    ).json()["job_id"]
    run_discovery(deps, model)
    base = f"/v1/projects/{a}/jobs/{job}"
    sheet = client.get(f"{base}/review/north", headers=auth).json()
    first, second = (int(r["Cluster"]) for r in sheet[:2]) if len(sheet) > 1 else (0, 0)

    read = client.get(f"{base}/labels", params={"folder": "north"}, headers=auth)
    assert read.status_code == 200 and read.headers["ETag"] == '"0"'
    assert read.json() == {"folder": "north", "revision": 0, "labels": []}
    change = {"changes": [{"target": f"cluster:{first}", "label": "chickadee"}]}
    no_revision = client.patch(f"{base}/labels?folder=north", headers=auth, json=change)
    assert no_revision.status_code == 422 and "If-Match" in no_revision.json()["message"]
    saved = client.patch(
        f"{base}/labels?folder=north",
        headers={**auth, "If-Match": '"0"', "X-Bdisc-Author": "ana"},
        json=change,
    )
    assert saved.status_code == 200 and saved.headers["ETag"] == '"1"'
    # A second reviewer who read revision 0 saves late: 409, with the current revision.
    late = client.patch(
        f"{base}/labels?folder=north",
        headers={**auth, "If-Match": '"0"'},
        json={"changes": [{"target": f"cluster:{first}", "label": "tit"}]},
    )
    assert late.status_code == 409 and "revision 1" in late.json()["message"]
    window = "window:north/r0.wav:0.000:3.000"
    client.patch(
        f"{base}/labels?folder=north",
        headers={**auth, "If-Match": '"1"'},
        json={"changes": [{"target": window, "label": "wind"}], "source": "window"},
    )
    labels = client.get(f"{base}/labels", headers=auth).json()["labels"]
    assert {(x["target"], x["label"], x["author"]) for x in labels} == {
        (f"cluster:{first}", "chickadee", "ana"),
        (window, "wind", "api"),
    }
    # The review sheet shows the store's labels; the legacy PUT writes the store.
    review = client.get(f"{base}/review/north", headers=auth)
    assert review.headers["ETag"] == '"2"'
    assert {int(r["Cluster"]): r["Label"] for r in review.json()}[first] == "chickadee"
    put = client.put(
        f"{base}/review/north",
        headers={**auth, "If-Match": '"2"'},
        json=[{"Folder": "north", "Cluster": second, "Label": "Poecile"}],
    )
    assert put.status_code == 200 and put.headers["ETag"] == '"3"'
    stale_put = client.put(
        f"{base}/review/north",
        headers={**auth, "If-Match": '"2"'},
        json=[{"Folder": "north", "Cluster": second, "Label": "x"}],
    )
    assert stale_put.status_code == 409
    history = client.get(f"{base}/labels/history?folder=north", headers=auth).json()["changes"]
    assert [(h["revision"], h["label"], h["source"]) for h in history][:2] == [
        (1, "chickadee", "cluster"),
        (2, "wind", "window"),
    ]
    # Undo the last change; the sheet follows.
    undone = client.post(f"{base}/labels:undo?folder=north", headers={**auth, "If-Match": '"3"'})
    assert undone.status_code == 200 and undone.json() == {"revision": 4}
    after = client.get(f"{base}/review/north", headers=auth, params={"format": "csv"}).text
    assert "Poecile" not in after and "chickadee" in after
    # The paper's sheet: exported, and imported again after the labels were removed.
    exported = client.get(f"{base}/labels.csv", headers=auth).text
    assert exported.splitlines() == ["Folder,Cluster,Label", f"north,{first},chickadee"]
    client.patch(
        f"{base}/labels?folder=north",
        headers={**auth, "If-Match": '"4"'},
        json={"changes": [{"target": f"cluster:{first}", "label": ""}]},
    )
    assert client.get(f"{base}/labels.csv", headers=auth).text == "Folder,Cluster,Label\n"
    imported = client.post(
        f"{base}/labels:import",
        headers={**auth, "Content-Type": "text/csv"},
        content=exported.replace("Cluster", "Cluster #").encode(),  # the paper's header
    )
    assert imported.status_code == 200 and imported.json()["imported"] == 1
    assert client.get(f"{base}/labels.csv", headers=auth).text == exported
    # Refused: unknown deployments, bad targets, other projects' keys and jobs.
    assert client.get(f"{base}/labels?folder=nowhere", headers=auth).status_code == 404
    bad_target = client.patch(
        f"{base}/labels?folder=north",
        headers={**auth, "If-Match": '"6"'},
        json={"changes": [{"target": "moon:1", "label": "x"}]},
    )
    assert bad_target.status_code == 422
    beta = {"X-API-Key": k["beta-key"]}
    assert client.get(f"{base}/labels", headers=beta).status_code == 403
    other = f"/v1/projects/{k['beta']}/jobs/{job}/labels"
    assert client.get(other, headers=beta).status_code == 404
    # A finished job cannot be cancelled: it keeps its outcome and its labels.
    refused = client.post(f"{base}:cancel", headers=auth)
    assert refused.status_code == 409 and "only a job at work" in refused.json()["message"]
    # A cancelled job is not retried: its queued work is dropped, it would never end.
    deps.jobs.set_job_status(job, "cancelled")
    refused = client.post(f"{base}:retry", headers=auth)
    assert refused.status_code == 409 and "cancelled" in refused.json()["message"]


@pytest.mark.integration
def test_each_key_has_its_own_request_rate(
    gateway: tuple[TestClient, Deps, dict[str, str]],
) -> None:
    """Past its burst a key gets 429 with Retry-After; another key, and the health checks,
    go on as before."""
    _, deps, k = gateway
    client = TestClient(create_app(replace(deps, rate_per_s=0.5, rate_burst=3)))
    a, b = k["alpha"], k["beta"]
    alpha, beta = {"X-API-Key": k["alpha-key"]}, {"X-API-Key": k["beta-key"]}
    answers = [client.get(f"/v1/projects/{a}/audio", headers=alpha) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"] == "TooManyRequests"
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 2
    assert client.get(f"/v1/projects/{b}/audio", headers=beta).status_code == 200
    assert client.get("/healthz").status_code == 200


@pytest.mark.integration
def test_requests_are_counted_by_route_template_off_the_api_port(
    gateway: tuple[TestClient, Deps, dict[str, str]],
) -> None:
    """The API's port has no /metrics (it is public); the metrics registry, served on
    the metrics port, counts every answer by its route's template, 429s included."""
    _, deps, k = gateway
    client = TestClient(create_app(replace(deps, rate_per_s=0.5, rate_burst=2)))
    a, alpha = k["alpha"], {"X-API-Key": k["alpha-key"]}
    route = "/v1/projects/{project}/audio"

    def count(status: str, path: str = route) -> float:
        value = REGISTRY.get_sample_value(
            "bdisc_http_requests_total", {"method": "GET", "route": path, "status": status}
        )
        return value or 0.0

    before = {s: count(s) for s in ("200", "429")}
    answers = [client.get(f"/v1/projects/{a}/audio", headers=alpha).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert count("200") - before["200"] == 2
    # a 429 is answered before routing: it counts as unmatched, never by its path
    assert count("429") == before["429"]
    assert count("429", "unmatched") >= 1
    unknown = client.get("/metrics")
    assert unknown.status_code == 404 and count("404", "unmatched") >= 1
    text = generate_latest(REGISTRY).decode()
    assert f'route="/v1/projects/{a}/audio"' not in text  # ids never become labels
    assert 'bdisc_http_request_seconds_count{method="GET",route="' + route + '"}' in text


@pytest.mark.integration
def test_a_project_rotates_its_key_and_the_old_one_stops_at_once(
    gateway: tuple[TestClient, Deps, dict[str, str]],
) -> None:
    client, deps, k = gateway
    a, b = k["alpha"], k["beta"]
    old = {"X-API-Key": k["alpha-key"]}
    assert client.post(f"/v1/projects/{a}/key:rotate").status_code == 401
    refused = client.post(f"/v1/projects/{a}/key:rotate", headers={"X-API-Key": k["beta-key"]})
    assert refused.status_code == 403  # another project's key rotates nothing here
    # the review app's session (a browser tab) reads and labels, but neither rotates the
    # key nor sees the webhook's secret: that needs the key itself
    assert client.post("/ui/session", json={"key": k["alpha-key"]}).status_code == 200
    ui = {"X-Bdisc-UI": "1"}
    assert client.get("/ui/session").json()["project"] == a
    assert client.post(f"/v1/projects/{a}/key:rotate", headers=ui).status_code == 403
    hook = {"url": "http://127.0.0.1:9/hook"}
    assert client.put(f"/v1/projects/{a}/webhook", headers=ui, json=hook).status_code == 403
    client.cookies.clear()
    assert client.get("/v1/me", headers=old).json() == {"project": a}
    rotated = client.post(f"/v1/projects/{a}/key:rotate", headers=old)
    assert rotated.status_code == 200 and rotated.json()["project"] == a
    new = {"X-API-Key": rotated.json()["api_key"]}
    assert new != old and rotated.json()["api_key"].startswith("bd_")
    assert client.get("/v1/me", headers=old).status_code == 401
    assert client.get(f"/v1/projects/{a}/audio", headers=old).status_code == 401
    assert client.get("/v1/me", headers=new).json() == {"project": a}
    assert client.get("/v1/me", headers={"X-API-Key": k["beta-key"]}).json() == {"project": b}
    # an operator gives a project that lost its key a new one
    operator = deps.projects.rotate_key(a)
    assert client.get("/v1/me", headers=new).status_code == 401
    assert client.get("/v1/me", headers={"X-API-Key": operator}).json() == {"project": a}
