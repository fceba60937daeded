"""``bdisc review``: the same review app over a ``bdisc discover`` output folder on this
machine, in a real browser, with no key; labels kept in the folder survive clustering
again and reach ``bdisc export`` through review.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.cli.main import main as bdisc
from bdisc.discovery.api import DiscoverConfig, discover
from bdisc.discovery.clustering import ClusterParams
from bdisc.discovery.labelled_sheet import LOCAL_JOB, local_labels_url
from bdisc.discovery.sheets import recording_path
from bdisc.pipeline.recording_task import ModelFactory
from bdisc.ports.label_store import Target
from gateway.local import build

from ..gateway_helpers import serve_app
from .helpers import write_clip

pytestmark = pytest.mark.model


def clusters_of(path: Path) -> dict[tuple[str, float, float], int]:
    with path.open(newline="") as f:
        return {
            (recording_path(r["folder"], r["file"]), float(r["start_s"]), float(r["end_s"])): int(
                r["cluster"]
            )
            for r in csv.DictReader(f)
        }


def test_review_a_results_folder_in_the_browser(
    browser: Any, factory: ModelFactory, audio_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    root, results = tmp_path / "recordings", tmp_path / "results"
    write_clip(audio_dir / "soundscape.flac", root / "north" / "n1.wav", 12.0)
    write_clip(audio_dir / "pica_pica_30s.flac", root / "north" / "n2.wav", 12.0)
    write_clip(audio_dir / "soundscape.flac", root / "south" / "s1.wav", 9.0)
    config = DiscoverConfig(
        root, results, cluster=ClusterParams(min_cluster_size=2), progress=False
    )
    discover(config, factory=factory)

    with serve_app(build(results)) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/ui/")  # no key to enter on this machine
        expect(page.locator("#who")).to_have_text("project local")
        page.click("a[href='#/job/local']")
        expect(page.locator("tr[data-folder='south']")).to_be_visible()
        page.click("a[href$='/north']")
        first = page.locator("#clusters tr[data-cluster]").first
        cluster = int(first.get_attribute("data-cluster") or "0")
        first.locator("input").fill("chickadee")
        first.locator("button").click()
        expect(page.locator("#notice")).to_contain_text("Saved")
        page.reload()
        expect(page.locator(f"#clusters tr[data-cluster='{cluster}'] input")).to_have_value(
            "chickadee"
        )
        # A tile plays from the recording itself (ranged reads of the local file).
        page.click(f"a[href$='/north/{cluster}']")
        tile = page.locator(".tile").first
        expect(tile.locator("img")).to_have_js_property("complete", True)
        tile.click()
        page.wait_for_function("() => !document.getElementById('player').paused", timeout=10_000)
        assert errors == []

    # The sheet shows the label: bdisc export reads it from there.
    sheet = results / "north" / "review.csv"
    labelled = {r["Cluster"]: r["Label"] for r in csv.DictReader(sheet.open())}
    assert labelled[str(cluster)] == "chickadee"
    assert bdisc(["export", "--review", str(sheet), "--results", str(results),
                  "--out", str(tmp_path / "trainset")]) == 0  # fmt: skip
    assert list((tmp_path / "trainset" / "chickadee").glob("*.wav"))

    # Clustering again (other parameters): every window labelled before keeps its label.
    before = clusters_of(results / "north" / "clusters.csv")
    store = SqlLabelStore(SqlJobStore(local_labels_url(results)).engine)
    again = DiscoverConfig(
        root,
        results,
        cluster=ClusterParams(min_cluster_size=3, n_neighbors=5),
        progress=False,
        labels=store,
    )
    discover(again, factory=factory)
    after = clusters_of(results / "north" / "clusters.csv")
    now = {r.target: r.label for r in store.labels(LOCAL_JOB, "north")}
    for window, old in before.items():
        if old != cluster:
            continue
        label = now.get(Target.cluster("north", after[window])) or now.get(
            Target.window("north", *window)
        )
        assert label == "chickadee", window
