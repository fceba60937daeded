"""Time and peak memory of prune + UMAP + HDBSCAN (+ the background group and the 2-D
map) at 10k, 100k (and 1M) windows, with bdisc discover's default parameters.

Synthetic embeddings (non-negative, 1024-d, 40 groups with their own active dimensions)
stand in for BirdNET's. Each size runs in a fresh process so peak memory is its own.
Also the ``jsd`` method (N x N Jensen-Shannon matrix) at 2k and 5k. The target for the
default method is 100k windows in 120 s on 2 cores: the ratio column is time / target.

    python bench/cluster_scale.py [--sizes 10000 100000] [--pca N] [--jsd-sizes 2000 5000]

Without --pca the default applies (automatic PCA to 64 above 20,000 windows).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

TARGET_S = {100_000: 120.0}


def synthetic(n: int, dim: int = 1024, groups: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    profiles = np.full((groups, dim), 0.05, dtype=np.float32)
    for g in range(groups):
        profiles[g, rng.choice(dim, 64, replace=False)] = 2.0
    which = rng.integers(0, groups, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        out[start:stop] = rng.gamma(4.0, 0.5, (stop - start, dim)).astype(np.float32)
        out[start:stop] *= profiles[which[start:stop]]
    return out


def one(n: int, method: str, pca: int | None) -> dict[str, float]:
    from bdisc.discovery.clustering import ClusterParams, cluster
    from bdisc.discovery.prune import PruneRules, prune

    data = synthetic(n)
    labels = np.array(["Turdus merula_Eurasian Blackbird"] * n, dtype=object)
    start = time.perf_counter()
    keep, _ = prune(
        labels,
        np.full(n, 0.5),
        np.full(n, -30.0),
        np.arange(n).astype(str).astype(object),
        PruneRules(drop_silence_db=-90),
    )
    recordings = (np.arange(n) // 200).astype(str)  # 5-min files at 1.5-s overlap
    params = ClusterParams(method=method, pca_components=pca)  # type: ignore[arg-type]
    result = cluster(data[keep], params, recordings[keep])
    seconds = time.perf_counter() - start
    return {
        "windows": n,
        "method": method,
        "pca_used": result.pca_used,
        "seconds": round(seconds, 1),
        "clusters": int(result.labels.max() + 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--jsd-sizes", type=int, nargs="*", default=[2_000, 5_000])
    parser.add_argument("--pca", type=int, default=None, help="PCA components before UMAP")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="umap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        sys.stdout.write(json.dumps(one(args.one, args.method, args.pca)) + "\n")
        return
    rows = []
    runs = [(n, "umap") for n in args.sizes] + [(n, "jsd") for n in args.jsd_sizes]
    for n, method in runs:
        cmd = [sys.executable, __file__, "--one", str(n), "--method", method]
        if args.pca:
            cmd += ["--pca", str(args.pca)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        if method == "umap" and n in TARGET_S:
            row["ratio_to_target"] = round(row["seconds"] / TARGET_S[n], 2)
        rows.append(row)
        sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
