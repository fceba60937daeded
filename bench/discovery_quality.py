"""Discovery quality on field-like mixtures: bdisc's default against the paper's method.

Builds, per seed and variant, three deployments of 8 one-minute recordings: twelve real
sound types (``bench/discovery_sources.py``, from ``../shared/data``) placed at random
times and 0-20 dB SNR into real background beds, background the majority of windows
(``bdisc.discovery.mixture``). Then, on the same recordings:

- ``default``: ``bdisc discover`` with no options (1.5-s overlap, UMAP 8-D + HDBSCAN with
  the automatic cluster size, linking into sound types);
- ``paper-jsd``: the paper's method, HDBSCAN (min cluster size 5) on the Jensen-Shannon
  distance matrix, per deployment;
- ``umap-leaf``: UMAP (cosine, min_dist 0, 2-D) + HDBSCAN (leaf, min cluster size 5);
- ``old-default``: bdisc 0.1's default (UMAP 2-D, min_dist 0.1, eom, min cluster size 5).

Each baseline runs at 0-s overlap (bdisc's old default) and at 1.5 s (the paper's). Per
seed and in sum: types discovered (>= 3 windows in a cluster at purity >= 0.7), V-measure
of the clusters (and of the linked sound types), clusters to open, labels needed to name
every discovered type with and without linking, and wrong links
(``bdisc.discovery.quality``).

    python bench/discovery_quality.py [--seeds 1 2 3] [--variants shared distinct]
                                      [--methods default ...] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bdisc.discovery.api import DiscoverConfig, discover
from bdisc.discovery.clustering import ClusterParams
from bdisc.discovery.linking import SOUND_TYPES_FILE, LinkParams, read_sound_types
from bdisc.discovery.mixture import MixtureSpec, build, read_events, window_truth, write_events
from bdisc.discovery.quality import BASELINES, score, v_measure
from bdisc.discovery.sheets import read_clusters
from bdisc.params import AnalysisParams
from discovery_sources import SHARED, background_beds, sound_types


def methods(
    overrides: dict[str, Any] | None = None, link_threshold: float | None = None
) -> dict[str, tuple[float, ClusterParams, LinkParams]]:
    """name -> (overlap, clustering, linking); the default is bdisc discover's own, with
    ``overrides`` of its clustering parameters (to measure a variant)."""
    default = DiscoverConfig(Path(), Path())
    cluster = replace(default.cluster, **(overrides or {}))
    link = default.link if link_threshold is None else LinkParams(threshold=link_threshold)
    out = {"default": (default.params.overlap_s, cluster, link)}
    for name, params in BASELINES.items():
        for overlap in (0.0, 1.5):
            out[f"{name}@{overlap:g}"] = (overlap, params, LinkParams(threshold=0.0))
    return out


def run_method(
    recordings: Path, out: Path, overlap: float, cluster: ClusterParams, link: LinkParams
) -> dict[str, Any]:
    config = DiscoverConfig(
        recordings,
        out,
        params=replace(AnalysisParams(), overlap_s=overlap),
        cluster=cluster,
        link=link,
        progress=False,
        workers=2,
        montage_cap=4,
        audio_per_cluster=0,
    )
    started = time.monotonic()
    summary = discover(config)
    seconds = time.monotonic() - started
    events = read_events(recordings.parent / "events.csv")
    rows = [r for g in summary.groups for r in read_clusters(out / g.name / "clusters.csv")]
    truth = [window_truth(events, r.folder, r.file, r.start_s, r.end_s) for r in rows]
    types = read_sound_types(out / SOUND_TYPES_FILE) if link.threshold > 0 else None
    folders = [r.folder for r in rows]
    quality = score(folders, [r.cluster for r in rows], truth, types)
    type_ids = [
        (types or {}).get((r.folder, r.cluster), f"{r.folder}/{r.cluster}")
        if r.cluster >= 0
        else f"{r.folder}/noise"
        for r in rows
    ]
    return {
        "eligible": len(quality.eligible),
        "discovered": len(quality.discovered),
        "missed": sorted(set(quality.eligible) - set(quality.discovered)),
        "v_measure": quality.v_measure,
        "v_measure_types": round(v_measure(truth, type_ids), 4),
        "clusters": quality.clusters,
        "labels_unlinked": quality.labels_unlinked,
        "labels_linked": quality.labels_linked,
        "links": quality.links,
        "wrong_links": quality.wrong_links,
        "species_mixups": quality.species_mixups,
        "windows": len(rows),
        "background_share": round(float(np.mean([t == "background" for t in truth])), 3),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=["shared", "distinct"])
    parser.add_argument(
        "--methods", nargs="+", help="only these methods (default: all; see methods())"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="PARAM=VALUE",
        help="the default with these clustering parameters changed (JSON values)",
    )
    parser.add_argument(
        "--link-threshold", type=float, help="the default with this link threshold instead"
    )
    parser.add_argument("--keep", type=Path, help="keep mixtures and results here")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs the shared data set at {SHARED}")
    logging.disable(logging.INFO)
    types, beds = sound_types(), background_beds()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for variant in args.variants:
            for seed in args.seeds:
                run = f"{variant}-{seed}"
                root = base / run
                if not (root / "events.csv").is_file():
                    spec = MixtureSpec(recordings=8, variant=variant, seed=seed)
                    events = build(root / "recordings", types, beds, spec)
                    write_events(root / "events.csv", events)
                overrides = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.set)}
                variants = methods(overrides, args.link_threshold)
                for name, (overlap, cluster, link) in variants.items():
                    if args.methods and name not in args.methods:
                        continue
                    out = root / f"out-{overlap:g}"  # embeddings shared by the methods
                    results.setdefault(name, {})[run] = run_method(
                        root / "recordings", out, overlap, cluster, link
                    )
                    r = results[name][run]
                    sys.stdout.write(
                        f"{run:11s} {name:16s} discovered {r['discovered']:2d}/{r['eligible']}"
                        f"  V {r['v_measure']:.3f} (types {r['v_measure_types']:.3f})"
                        f"  clusters {r['clusters']:3d}  labels {r['labels_unlinked']:3d}"
                        f" -> {r['labels_linked']:3d}  wrong links {r['wrong_links']}/"
                        f"{r['links']} (species mixed {r['species_mixups']})"
                        f"  {r['seconds']:.0f} s\n"
                    )
                    sys.stdout.flush()
    summary = {name: _sum(per_run) for name, per_run in results.items()}
    sys.stdout.write("\nsum over runs:\n")
    for name, s in summary.items():
        sys.stdout.write(
            f"{name:16s} discovered {s['discovered']}/{s['eligible']} ({s['share']:.0%})"
            f"  V {s['v_measure']:.3f} (types {s['v_measure_types']:.3f})  clusters "
            f"{s['clusters']}  labels {s['labels_unlinked']} -> {s['labels_linked']}"
            f" ({s['labels_per_type']:.2f} per discovered type)  wrong links "
            f"{s['wrong_links']}/{s['links']} ({s['wrong_share']:.1%}), two species mixed "
            f"{s['species_mixups']} ({s['mixup_share']:.1%})\n"
        )
    if "default" in summary and len(summary) > 1:
        best = max((n for n in summary if n != "default"), key=lambda n: summary[n]["share"])
        d, b = summary["default"], summary[best]
        sys.stdout.write(
            f"\ndefault - best baseline ({best}): discovered "
            f"{100 * (d['share'] - b['share']):+.1f} points, V-measure "
            f"{d['v_measure'] - b['v_measure']:+.3f}\n"
        )
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "sum": summary}, indent=2))


def _sum(per_run: dict[str, dict[str, Any]]) -> dict[str, Any]:
    runs = list(per_run.values())
    total = {
        k: sum(r[k] for r in runs)
        for k in (
            "eligible",
            "discovered",
            "clusters",
            "labels_unlinked",
            "labels_linked",
            "links",
            "wrong_links",
            "species_mixups",
        )
    }
    return {
        **total,
        "share": total["discovered"] / max(1, total["eligible"]),
        "v_measure": round(float(np.mean([r["v_measure"] for r in runs])), 4),
        "v_measure_types": round(float(np.mean([r["v_measure_types"] for r in runs])), 4),
        "labels_per_type": total["labels_linked"] / max(1, total["discovered"]),
        "wrong_share": total["wrong_links"] / max(1, total["links"]),
        "mixup_share": total["species_mixups"] / max(1, total["links"]),
    }


if __name__ == "__main__":
    main()
