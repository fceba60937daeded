"""The review app in a real browser (Chromium through Playwright) against the real gateway
on the real stack: log in once, open a deployment, hover and lasso the map, label a
cluster and a selection, play a tile, reload and see the labels, meet a conflict, and
export the labelled clips."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bdisc.app import stages
from bdisc.app.export_stage import ExportStage
from bdisc.app.stage_handler import stage_handler
from bdisc.model.birdnet import BirdNetV24
from bdisc.ports.label_store import Target
from gateway.app import create_app
from gateway.deps import Deps

from ..gateway_helpers import run_discovery, serve_app, upload
from ..model.helpers import write_clip

DOCS = Path(__file__).parents[2] / "docs"
pytestmark = pytest.mark.integration


@pytest.fixture
def served(gateway: tuple[TestClient, Deps, dict[str, str]]) -> Iterator[str]:
    """The gateway on a real port (the browser needs one)."""
    with serve_app(create_app(gateway[1])) as url:
        yield url


def test_a_reviewer_labels_and_exports_in_the_browser(
    gateway: tuple[TestClient, Deps, dict[str, str]],
    served: str,
    browser: object,
    model: BirdNetV24,
    audio_dir: Path,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    client, deps, k = gateway
    project, key = k["alpha"], k["alpha-key"]
    for i in range(2):
        clip = write_clip(audio_dir / "soundscape.flac", tmp_path / f"r{i}.wav", 15.0)
        assert upload(client, project, key, f"north/r{i}.wav", clip.read_bytes()) == 201
    job = client.post(
        f"/v1/projects/{project}/jobs",
        headers={"X-API-Key": key},
        json={"cluster": {"min_cluster_size": 2}},
    ).json()["job_id"]
    run_discovery(deps, model)
    assert deps.jobs.job(job).status == "done"

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Log in once: the key goes into an HttpOnly cookie, never into the page or the URL.
    page.goto(f"{served}/ui/")
    page.fill("#key", key)
    page.click("#login button")
    expect(page.locator("#who")).to_have_text(f"project {project}")
    expect(page.locator("#crumbs")).to_have_text(project)
    cookie = next(c for c in context.cookies() if c["name"] == "bdisc_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert key not in page.url and page.evaluate("document.cookie") == ""

    # Jobs -> deployments with review progress -> the deployment's map and clusters.
    page.click(f"a[href='#/job/{job}']")
    expect(page.locator("tr[data-folder='north']")).to_contain_text("0 / ")
    page.click("a[href$='/north']")
    expect(page.locator("#clusters tr[data-cluster]").first).to_be_visible()
    canvas = page.locator("#map")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    # Hovering a point shows its tile, rendered by the spectrogram service.
    expect(canvas).to_have_attribute("data-ready", "true")
    x, y = canvas.evaluate("c => c.pointAt(0)")
    page.mouse.move(box["x"] + x, box["y"] + y)
    expect(page.locator("#hover")).to_be_visible()
    expect(page.locator("#hover img")).to_have_js_property("complete", True)
    assert page.locator("#hover img").evaluate("img => img.naturalWidth") == 240
    if os.environ.get("BDISC_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "review_map.png"))

    # Label the first cluster from its row.
    first = page.locator("#clusters tr[data-cluster]").first
    cluster = int(first.get_attribute("data-cluster") or "0")
    first.locator("input").fill("chickadee")
    first.locator("button").click()
    expect(page.locator("#notice")).to_contain_text("Saved")
    # A lasso around the whole map selects every window; label them as a group.
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    w, h = box["width"], box["height"]
    for x, y in ((w - 2, 2), (w - 2, h - 2), (2, h - 2)):
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    page.mouse.move(box["x"] + 3, box["y"] + 3, steps=4)
    page.mouse.up()
    windows = (
        len(
            deps.objects.get_bytes(f"projects/{project}/jobs/{job}/results/north/clusters.csv")
            .decode()
            .splitlines()
        )
        - 1
    )
    expect(page.locator("#selection")).to_contain_text(f"{windows} windows selected")
    page.locator("#selection input").fill("soundscape")
    page.locator("#selection button.primary").click()
    expect(page.locator("#notice")).to_contain_text(f"Saved ({windows} labels)")
    stored = {r.target: r.label for r in deps.labels.labels(job, "north")}
    assert stored[Target.cluster("north", cluster)] == "chickadee"
    assert sum(1 for t, v in stored.items() if t.kind == "window" and v == "soundscape") == windows

    # Reload: the labels are still there (they are data, not page state).
    page.reload()
    row = page.locator(f"#clusters tr[data-cluster='{cluster}'] input")
    expect(row).to_have_value("chickadee")

    # The cluster view: tiles; a click plays the window with a moving playhead.
    page.click(f"a[href$='/north/{cluster}']")
    tile = page.locator(".tile").first
    expect(tile.locator("img")).to_have_js_property("complete", True)
    tile.click()
    expect(tile).to_have_class("tile playing")
    page.wait_for_function("() => !document.getElementById('player').paused", timeout=10_000)
    start = float(tile.get_attribute("data-start") or "0")
    page.wait_for_function(
        f"() => document.getElementById('player').currentTime > {start + 0.3}", timeout=10_000
    )
    if os.environ.get("BDISC_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "review_cluster.png"))
    page.wait_for_function(
        "() => document.querySelector('.tile').dataset.played === 'true'", timeout=15_000
    )

    # A second reviewer read the labels before the first saved again: a conflict message.
    other = browser.new_context().new_page()
    other.goto(f"{served}/ui/")
    other.fill("#key", key)
    other.click("#login button")
    other.goto(f"{served}/ui/#/job/{job}/north/{cluster}")
    expect(other.locator("#cluster-label")).to_have_value("chickadee")
    page.fill("#cluster-label", "Poecile")
    page.click("#save-label")
    expect(page.locator("#notice")).to_contain_text("Saved")
    other.fill("#cluster-label", "tit")
    other.click("#save-label")
    expect(other.locator("#notice")).to_contain_text("Someone else saved labels here first")
    stored = {r.target: r.label for r in deps.labels.labels(job, "north")}
    assert stored[Target.cluster("north", cluster)] == "Poecile"

    # Export: the store's labels become clips, one folder per label.
    export_job = client.post(
        f"/v1/projects/{project}/jobs/{job}/export", headers={"X-API-Key": key}, json={}
    ).json()["job_id"]
    run_discovery(deps, model)  # the orchestrator takes the export command
    exporter = stage_handler(deps.bus, ExportStage(deps.objects).routes)
    deps.bus.consume(stages.EXPORT, exporter, idle_timeout_s=1.0)
    run_discovery(deps, model)
    assert deps.jobs.job(export_job).status == "done", deps.jobs.job(export_job).error
    clips = [
        c
        for c in deps.objects.list(f"projects/{project}/jobs/{job}/trainset/")
        if c.endswith(".wav")
    ]
    assert len(clips) == windows  # every window: its own label ("soundscape") wins
    assert {c.split("/trainset/")[1].split("/")[0] for c in clips} == {"soundscape"}
    assert errors == []
