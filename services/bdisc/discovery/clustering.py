"""Reduce embeddings with UMAP and cluster with HDBSCAN; or the paper's JSD method.

``umap`` (default): optional PCA, UMAP (cosine) to ``n_components`` dimensions, HDBSCAN on
the UMAP coordinates. ``jsd``: HDBSCAN on the precomputed Jensen-Shannon distance matrix
of the embeddings (each treated as a distribution, as birdnet-discovery does), passed
with ``metric='precomputed'`` (the original code passed it as features). Both return a
2-D map for plotting. Fixed seed: same input, same clusters.

The defaults were chosen on ``bench/discovery_quality.py`` (real calls at random times
and 0-20 dB SNR in real background, three deployments, three seeds, two variants; see
the README): 5 UMAP dimensions with ``min_dist`` 0 (a 2-D layout squeezes rare sounds
into their neighbours), HDBSCAN's excess-of-mass selection with ``min_samples`` 1, and a
minimum cluster size that follows the number of windows (3 up to about 1,000 windows,
so that a call heard a handful of times still forms a cluster; then growing with the
square root of N, so that 100,000 windows do not give thousands of clusters).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from bdisc.discovery.background import (
    QUIET_MARGIN_DB,
    foreground_scores,
    group_background,
    known_birds,
    known_events,
    quiet_windows,
)
from bdisc.discovery.named_groups import named_groups
from bdisc.errors import ConfigError

Method = Literal["umap", "jsd"]


JSD_MAX_WINDOWS = 6000  # the JSD method's N x N matrix: 288 MB at 6,000 windows
METRICS = ("cosine", "euclidean", "manhattan", "correlation", "chebyshev")


@dataclass(frozen=True)
class ClusterParams:
    method: Method = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.0
    n_components: int = 5
    metric: str = "cosine"
    # None: automatic, PCA to 64 dimensions above 20,000 windows (UMAP's neighbour search
    # on 1024 dimensions dominates the time there); 0: never.
    pca_components: int | None = None
    auto_pca_windows: int = 20_000
    auto_pca_components: int = 64
    seed: int = 42
    min_cluster_size: int | None = None  # None: automatic, see ``min_cluster_size_for``
    min_samples: int | None = 1  # None: as min_cluster_size (HDBSCAN's own default)
    selection: Literal["eom", "leaf"] = "eom"
    jsd_max_windows: int = 6000  # at most JSD_MAX_WINDOWS
    # Clusters whose windows sit this close (median cosine distance) to their
    # recording's background become one background cluster, 0 (see background.py); 0: off.
    background_threshold: float = 0.2
    # A window counts as quiet (background-like) when its level is at most this many dB
    # above its recording's median level (see background.py).
    background_level_db: float = QUIET_MARGIN_DB
    # A cluster whose windows BirdNET mostly names as a bird with at least this score is
    # never background (a focal recording of one song); 1: almost no such guard.
    background_guard_score: float = 0.5
    # Noise and background windows that BirdNET names as the same bird with at least this
    # score form a cluster of their own (see named_groups.py); 0: off.
    named_group_score: float = 0.5
    # Windows that BirdNET names as one of its sound events (a dog, a gun, a siren) with
    # at least this score guard their cluster from the background group as birds do (see
    # background.py); 0: off.
    event_guard_score: float = 0.2

    def __post_init__(self) -> None:
        if self.method not in ("umap", "jsd"):
            raise ConfigError(f"clustering method must be umap or jsd, got {self.method!r}")
        if self.selection not in ("eom", "leaf"):
            raise ConfigError(f"cluster selection must be eom or leaf, got {self.selection!r}")
        too_small = self.min_cluster_size is not None and self.min_cluster_size < 2
        if self.n_neighbors < 2 or self.n_components < 2 or too_small:
            raise ConfigError("n_neighbors, n_components and min_cluster_size must be >= 2")
        if not 0.0 <= self.background_threshold <= 1.0:
            raise ConfigError(
                f"background_threshold must be in [0, 1], got {self.background_threshold}"
            )
        if not -20.0 <= self.background_level_db <= 40.0:
            raise ConfigError(
                f"background_level_db must be in [-20, 40], got {self.background_level_db}"
            )
        if not 0.0 < self.background_guard_score <= 1.0:
            raise ConfigError(
                f"background_guard_score must be in (0, 1], got {self.background_guard_score}"
            )
        if not 0.0 <= self.named_group_score <= 1.0:
            raise ConfigError(f"named_group_score must be in [0, 1], got {self.named_group_score}")
        if not 0.0 <= self.event_guard_score <= 1.0:
            raise ConfigError(f"event_guard_score must be in [0, 1], got {self.event_guard_score}")
        if self.min_samples is not None and self.min_samples < 1:
            raise ConfigError(f"min_samples must be >= 1, got {self.min_samples}")
        if not 0.0 <= self.min_dist <= 1.0:
            raise ConfigError(f"min_dist must be in [0, 1], got {self.min_dist}")
        self._check_bounds()

    def _check_bounds(self) -> None:
        """Upper bounds: what a user may ask for without exhausting a shared service."""
        bounds = {
            "n_neighbors": (self.n_neighbors, 200),
            "n_components": (self.n_components, 50),
            "min_cluster_size": (self.min_cluster_size or 2, 100_000),
            "min_samples": (self.min_samples or 1, 10_000),
            "pca_components": (self.pca_components or 0, 1024),
            "auto_pca_components": (self.auto_pca_components, 1024),
        }
        for name, (value, top) in bounds.items():
            if not isinstance(value, int) or isinstance(value, bool) or value > top:
                raise ConfigError(f"{name} must be a whole number up to {top}, got {value!r}")
        if not 1 <= self.jsd_max_windows <= JSD_MAX_WINDOWS:
            raise ConfigError(
                f"jsd_max_windows must be 1 to {JSD_MAX_WINDOWS} (the JSD matrix is N x N)"
            )
        if self.auto_pca_windows < 1:
            raise ConfigError("auto_pca_windows must be >= 1")
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cluster_size(self, n: int) -> int:
        """The minimum cluster size used for a group of ``n`` windows."""
        return self.min_cluster_size or min_cluster_size_for(n)


def min_cluster_size_for(n: int) -> int:
    """3 up to about 1,000 windows, then sqrt(N) / 8 (40 at 100,000), at most 100."""
    return int(max(3, min(100, round(np.sqrt(max(n, 1)) / 8))))


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # int (N,), -1 = noise
    probabilities: np.ndarray  # float (N,)
    map_xy: np.ndarray  # float (N, 2)
    pca_used: int = 0  # PCA components actually used (0: none)
    min_cluster_size: int = 0  # the minimum cluster size used
    background: bool = False  # cluster 0 is the background group


def jsd_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise Jensen-Shannon distances (base 2, in [0, 1]) between rows as distributions.

    JS(p, q) = H(m) - (H(p) + H(q)) / 2 with m = (p + q) / 2: the row entropies are
    computed once, leaving one logarithm per element pair (a parallel numba kernel; 10x
    faster than scipy's pdist).
    """
    p = np.clip(embeddings.astype(np.float64), 0.0, None) + 1e-12
    p /= p.sum(axis=1, keepdims=True)
    plogp = (p * np.log2(p)).sum(axis=1)
    return np.asarray(_jsd_kernel()(p, plogp))


_KERNEL: Any = None


def _jsd_kernel() -> Any:
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(parallel=True, fastmath=True, cache=True)  # type: ignore[untyped-decorator]
        def kernel(p: np.ndarray, plogp: np.ndarray) -> np.ndarray:
            n, dim = p.shape
            out = np.zeros((n, n))
            for i in numba.prange(n):
                for j in range(i + 1, n):
                    acc = 0.0
                    for k in range(dim):
                        s = p[i, k] + p[j, k]
                        acc += s * np.log2(s)
                    # -H(m) = sum(m log m) = (sum(s log s) - sum(s)) / 2, with sum(s) = 2
                    js = 0.5 * (plogp[i] + plogp[j]) - 0.5 * (acc - 2.0)
                    d = np.sqrt(max(js, 0.0))
                    out[i, j] = d
                    out[j, i] = d
            return out

        _KERNEL = kernel
    return _KERNEL


MAP_MIN_DIST = 0.1  # the map is for looking at: points spread within their cluster


def _umap(
    data: np.ndarray,
    params: ClusterParams,
    n_components: int,
    metric: str,
    min_dist: float | None = None,
) -> np.ndarray:
    import umap

    n = data.shape[0]
    reducer = umap.UMAP(
        n_neighbors=min(params.n_neighbors, n - 1),
        min_dist=params.min_dist if min_dist is None else min_dist,
        n_components=n_components,
        metric=metric,
        random_state=params.seed,
        init="spectral" if n > n_components + 1 else "random",
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs/random_state notice, small-n spectral notes
        return np.asarray(reducer.fit_transform(data), dtype=np.float64)


def cluster(
    embeddings: np.ndarray,
    params: ClusterParams,
    recordings: np.ndarray | None = None,
    levels: np.ndarray | None = None,
    birdnet: tuple[np.ndarray, np.ndarray] | None = None,
) -> Clustering:
    """``recordings`` names each window's recording, ``levels`` gives its level in dBFS
    and ``birdnet`` BirdNET's top label and score of each window, for the background
    group and the named groups (without them: one recording, every window quiet, none
    named)."""
    n = embeddings.shape[0]
    size = params.cluster_size(n)
    if n < max(size, 4):
        # Too few windows to find any structure: all noise, laid out on a line.
        return Clustering(np.full(n, -1), np.zeros(n), np.c_[np.arange(n), np.zeros(n)], 0, size)
    import hdbscan

    data = np.asarray(embeddings, dtype=np.float32)  # no copy when already float32
    pca = params.pca_components
    if pca is None:
        pca = params.auto_pca_components if n > params.auto_pca_windows else 0
    if pca and pca < min(data.shape):
        from sklearn.decomposition import PCA

        data = PCA(pca, random_state=params.seed).fit_transform(data)
    else:
        pca = 0
    hdb_args: dict[str, Any] = {
        "min_cluster_size": size,
        "min_samples": None if params.min_samples is None else min(params.min_samples, size),
        "cluster_selection_method": params.selection,
    }
    if params.method == "jsd":
        if n > params.jsd_max_windows:
            gib = n * n * 8 / 2**30
            raise ConfigError(
                f"--method jsd needs an N x N distance matrix: {n} windows would take "
                f"{gib:.1f} GiB. Prune or subset to at most {params.jsd_max_windows} windows "
                "per group, or use --method umap"
            )
        distances = jsd_matrix(embeddings)
        model = hdbscan.HDBSCAN(metric="precomputed", **hdb_args).fit(distances)
        map_xy = _umap(data, params, 2, params.metric, MAP_MIN_DIST)
    else:
        coords = _umap(data, params, params.n_components, params.metric)
        model = hdbscan.HDBSCAN(metric="euclidean", **hdb_args).fit(coords)
        # The map: a 2-D UMAP of the embeddings; above auto_pca_windows, of the clustering
        # coordinates instead (much cheaper there, but each cluster drawn tighter).
        if params.n_components == 2:
            map_xy = coords
        elif n <= params.auto_pca_windows:
            map_xy = _umap(data, params, 2, params.metric, MAP_MIN_DIST)
        else:
            map_xy = _umap(coords, params, 2, "euclidean", MAP_MIN_DIST)
    recordings = np.zeros(n) if recordings is None else recordings
    top_labels, top_scores = birdnet if birdnet is not None else (np.full(n, ""), np.zeros(n))
    labels, background = group_background(
        np.asarray(model.labels_),
        foreground_scores(embeddings, recordings),
        params.background_threshold,
        # levels unknown (embeddings imported from BirdNET-Analyzer): every window quiet
        None
        if levels is None or not np.isfinite(levels).all()
        else quiet_windows(levels, recordings, params.background_level_db),
        known_birds(top_labels, top_scores, params.background_guard_score)
        | known_events(top_labels, top_scores, params.event_guard_score),
    )
    probabilities = np.asarray(model.probabilities_)
    if params.named_group_score > 0:
        named = known_birds(top_labels, top_scores, params.named_group_score)
        names = np.where(named, np.asarray(top_labels, dtype=str), "")
        labels, probabilities = named_groups(
            labels, probabilities, names, top_scores, size, background
        )
    return Clustering(labels, probabilities, map_xy, pca, size, background)
