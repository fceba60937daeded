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
from bdisc.ports.label_store import Change, Target
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

    with pytest.raises(SystemExit) as shown:  # the gateway's command, plugged into bdisc
        bdisc(["review", "--help"])
    assert shown.value.code == 0
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
        # Completion offers the project's labels first, then BirdNET's species.
        names = page.evaluate("fetch('/v1/projects/local/label-names').then(r => r.json())")
        assert names["labels"][0] == "chickadee" and "Eurasian Magpie" in names["labels"]
        # A tile plays from the recording itself (ranged reads of the local file).
        page.click(f"a[href$='/north/{cluster}']")
        tile = page.locator(".tile").first
        expect(tile.locator("img")).to_have_js_property("complete", True)
        tile.click()
        page.wait_for_function("() => !document.getElementById('player').paused", timeout=10_000)
        assert errors == []

    # The sheet shows the label: bdisc export reads it from there, and the windows
    # labelled one by one (a lasso) from the folder's label store.
    sheet = results / "north" / "review.csv"
    labelled = {r["Cluster"]: r["Label"] for r in csv.DictReader(sheet.open())}
    assert labelled[str(cluster)] == "chickadee"
    store = SqlLabelStore(SqlJobStore(local_labels_url(results)).engine)
    north = clusters_of(results / "north" / "clusters.csv")
    members = [w for w, c in north.items() if c == cluster]
    window = Target.window("north", *members[0])
    store.write(LOCAL_JOB, "north", [Change(window, "wind")], "ana", "window", expected=None)
    assert bdisc(["export", "--review", str(sheet), "--results", str(results),
                  "--out", str(tmp_path / "trainset")]) == 0  # fmt: skip
    assert len(list((tmp_path / "trainset" / "chickadee").glob("*.wav"))) == len(members) - 1
    assert len(list((tmp_path / "trainset" / "wind").glob("*.wav"))) == 1

    # Clustering again (other parameters): every window labelled before keeps its label.
    before = clusters_of(results / "north" / "clusters.csv")
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
    for key, old in before.items():
        if old != cluster or Target.window("north", *key) == window:
            continue  # (the window labelled on its own keeps "wind")
        label = now.get(Target.window("north", *key)) or now.get(
            Target.cluster("north", after[key])
        )
        assert label == "chickadee", key
