"""Is the review app responsive on a large deployment? First paint of the map, hover and
lasso on 50,000 windows, against 1,000 windows measured in the same run (Chromium through
Playwright, ``bdisc review`` on a synthetic results folder: the map's cost is the
points, not the audio).

    .venv/bin/python bench/review_app_scale.py [--windows 50000] [--baseline 1000]
"""

from __future__ import annotations

import argparse
import csv
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn

from gateway.local import build

CLUSTER_COLUMNS = [
    "folder", "file", "start_s", "end_s", "cluster", "probability", "umap_x", "umap_y",
    "top_label", "top_confidence", "type",
]  # fmt: skip


def synthetic_results(root: Path, windows: int, clusters: int = 60, seed: int = 0) -> Path:
    """One deployment of ``windows`` windows in ``clusters`` blobs, as discover writes it."""
    rng = np.random.default_rng(seed)
    folder = root / "results" / "site"
    folder.mkdir(parents=True)
    centres = rng.uniform(-10, 10, size=(clusters, 2))
    labels = rng.integers(-1, clusters, size=windows)
    xy = centres[np.maximum(labels, 0)] + rng.normal(0, 0.6, size=(windows, 2))
    with (folder / "clusters.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CLUSTER_COLUMNS)
        for i in range(windows):
            recording, start = divmod(i, 1200)
            writer.writerow(
                ["site", f"r{recording:04d}.wav", start * 3.0, start * 3.0 + 3.0, labels[i],
                 0.9, round(xy[i, 0], 4), round(xy[i, 1], 4), "Pica pica_Eurasian Magpie",
                 0.5, ""]
            )  # fmt: skip
    with (folder / "review.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Folder", "Cluster", "Label", "Type", "SuggestedLabel", "Size"])
        for k in range(-1, clusters):
            writer.writerow(["site", k, "", "", "", int((labels == k).sum())])
    return root / "results"


def serve(app: object) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def measure(browser: object, windows: int) -> dict[str, float]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    with tempfile.TemporaryDirectory() as tmp:
        url, server, thread = serve(build(synthetic_results(Path(tmp), windows)))
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/ui/#/job/local")
        page.wait_for_selector("tr[data-folder='site']")
        started = time.perf_counter()
        page.goto(f"{url}/ui/#/job/local/site")
        page.wait_for_selector("#map[data-ready='true']")
        first_paint = time.perf_counter() - started
        canvas = page.locator("#map")
        box = canvas.bounding_box()
        assert box is not None
        hovers = []
        for i in range(0, windows, max(1, windows // 20)):
            x, y = canvas.evaluate(f"c => c.pointAt({i})")
            page.mouse.move(box["x"] + 1, box["y"] + 1)
            page.wait_for_selector("#hover", state="hidden")
            t = time.perf_counter()
            page.mouse.move(box["x"] + x, box["y"] + y)
            page.wait_for_selector("#hover", state="visible")
            hovers.append(time.perf_counter() - t)
        w, h = box["width"], box["height"]
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.down()
        for x, y in ((w / 2, 2), (w / 2, h / 2), (2, h / 2), (3, 3)):
            page.mouse.move(box["x"] + x, box["y"] + y, steps=5)
        t = time.perf_counter()
        page.mouse.up()
        page.wait_for_selector("#selection .card")
        lasso = time.perf_counter() - t
        page.close()
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "windows": windows,
        "first_paint_s": round(first_paint, 3),
        "hover_median_ms": round(1000 * float(np.median(hovers)), 1),
        "lasso_s": round(lasso, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=50_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        base = measure(browser, args.baseline)
        large = measure(browser, args.windows)
        browser.close()
    ratios = {
        k: round(large[k] / base[k], 2) for k in ("first_paint_s", "hover_median_ms", "lasso_s")
    }
    print(json.dumps({"baseline": base, "large": large, "ratio": ratios}, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
