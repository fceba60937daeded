"""``bdisc discover`` and ``bdisc export``: the review workflow of birdnet-discovery."""

from __future__ import annotations

import argparse
import csv
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bdisc.discovery.clustering import ClusterParams
from bdisc.discovery.export import ExportConfig, export
from bdisc.discovery.job_spec import DISCOVERY_OVERLAP_S, DiscoverySpec
from bdisc.discovery.labelled_sheet import LOCAL_JOB, LOCAL_LABELS, local_labels_url
from bdisc.discovery.linking import LinkParams
from bdisc.discovery.prune import PruneRules
from bdisc.discovery.raven_review import import_raven_labels
from bdisc.discovery.recordings import Subset, parse_hours
from bdisc.errors import ConfigError
from bdisc.logs import fields
from bdisc.params import AnalysisParams
from bdisc.ports.label_store import LabelStore
from bdisc.settings import CliSettings

if TYPE_CHECKING:
    from bdisc.training.window_classifier import HeadClassifier

log = logging.getLogger("bdisc.cli")
CLUSTER = ClusterParams()
LINK = LinkParams()

DISCOVER_HELP = """\
Turn a folder tree of recordings into clusters a person can review. Each immediate
subfolder of ROOT is a deployment ("Folder") and is clustered on its own (or all
together with --group-by all). Windows (overlapping by 1.5 s) are embedded with BirdNET
(resumable, shared with `bdisc embed --out` on the same folder), optionally pruned,
reduced with UMAP and clustered with HDBSCAN; background-like clusters become cluster
0. Per deployment, OUT/<folder>/ gets clusters.csv, review.csv (fill in the Label
column), <folder>_Cluster<k>_times.txt, montages/, map.png, audio/, prototypes.npz and
index.html, and raven/ (a Raven selection table per cluster) and audacity/ (a label
track per recording). Then the clusters of all deployments are linked into sound types:
OUT/sound_types.csv, and the Type and SuggestedLabel columns of every review.csv
(re-run after labelling to refresh the suggestions; nothing is computed again).
OUT/index.html links everything.
"""

EXPORT_HELP = """\
Cut the windows of labelled clusters out of the recordings into
OUT/<Label>/<folder>__<file>__<start ms>.wav (16-bit PCM), the folder-per-label layout
BirdNET-Analyzer's trainer reads. Blank labels are skipped. Run it again after editing
the sheet: clips move to their new label, dropped ones are deleted, nothing is duplicated.
OUT/manifest.csv lists every clip.
"""


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"dates look like 2023-06-01, got {text!r}") from exc


def _list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_discovery_options(d: argparse.ArgumentParser, *, group_by: bool = True) -> None:
    """Subsetting, pruning, clustering and review options (``discover`` and ``submit``)."""
    s = d.add_argument_group("subsetting (timestamps from file names, e.g. 20230604_053000)")
    s.add_argument(
        "--hours",
        type=parse_hours,
        metavar="H1-H2",
        help="keep recordings starting from H1:00 to before H2:00 (22-4 wraps)",
    )
    s.add_argument("--start-date", type=_day, metavar="YYYY-MM-DD")
    s.add_argument("--end-date", type=_day, metavar="YYYY-MM-DD", help="inclusive")
    s.add_argument(
        "--sample",
        type=float,
        metavar="FRACTION",
        help="random fraction of recordings per deployment (with --seed)",
    )
    p = d.add_argument_group("pruning (off by default: every window is clustered)")
    p.add_argument(
        "--keep-labels",
        type=_list,
        default=(),
        metavar="L1,L2",
        help="keep windows whose top BirdNET label matches one of these names or "
        "patterns (e.g. 'Turdus*,Common Loon')",
    )
    p.add_argument(
        "--any-bird",
        action="store_true",
        help="drop windows whose top label is a non-bird class (Human, Engine, "
        "Dog, Siren, Gun, Power tools, Fireworks, Noise, Environmental)",
    )
    p.add_argument(
        "--keep-min-conf",
        type=float,
        metavar="P",
        help="keep windows whose top score is at least P",
    )
    if group_by:  # a local folder of tables: bdisc discover only
        p.add_argument(
            "--prune-by-results",
            type=Path,
            metavar="DIR",
            help="keep the windows that BirdNET-Analyzer's result tables in DIR (CSV, Raven "
            "or Kaleidoscope, as bdisc analyze writes them too) detect something in; "
            "--keep-labels and --keep-min-conf then apply to those detections",
        )
        p.add_argument(
            "--exclude",
            type=Path,
            metavar="FILE",
            help="leave out the windows within these spans (recording,start_s,end_s, as "
            "bdisc duplicates writes duplicates_exclude.csv) before any other rule",
        )
    p.add_argument(
        "--top-n-per-file",
        type=int,
        metavar="N",
        help="keep the N best-scoring windows of each recording",
    )
    p.add_argument(
        "--drop-silence",
        type=float,
        metavar="DBFS",
        help="drop windows quieter than this level, e.g. -70",
    )
    c = d.add_argument_group("reduction and clustering")
    c.add_argument(
        "--method",
        choices=["umap", "jsd"],
        default="umap",
        help="umap: HDBSCAN on UMAP coordinates (default); jsd: HDBSCAN on the "
        "Jensen-Shannon distance matrix of the embeddings (the paper's)",
    )
    if group_by:
        c.add_argument("--group-by", choices=["folder", "all"], default="folder")
    c.add_argument("--n-neighbors", type=int, default=CLUSTER.n_neighbors)
    c.add_argument("--min-dist", type=float, default=CLUSTER.min_dist)
    c.add_argument(
        "--n-components",
        type=int,
        default=CLUSTER.n_components,
        help="UMAP dimensions clustered (default %(default)s; the map is always 2-D)",
    )
    c.add_argument("--metric", default="cosine", help="UMAP metric (default cosine)")
    c.add_argument(
        "--pca",
        type=int,
        metavar="N",
        help="PCA to N dimensions before UMAP; default: 64 above 20,000 windows "
        "per group, none below; 0: never",
    )
    c.add_argument(
        "--min-cluster-size",
        type=int,
        help="default: automatic, 3 up to about 1,000 windows per group, then sqrt(N)/8",
    )
    c.add_argument("--min-samples", type=int, default=CLUSTER.min_samples)
    c.add_argument("--cluster-selection", choices=["eom", "leaf"], default=CLUSTER.selection)
    c.add_argument(
        "--background-threshold",
        type=float,
        default=CLUSTER.background_threshold,
        help="clusters closer than this (median cosine distance) to their recording's "
        "background become one background cluster, 0 (default %(default)s; 0: off)",
    )
    c.add_argument(
        "--background-level-db",
        type=float,
        default=CLUSTER.background_level_db,
        metavar="DB",
        help="a window is quiet when its level is at most this many dB above its "
        "recording's median; a background cluster is mostly quiet (default %(default)s)",
    )
    c.add_argument(
        "--background-guard-score",
        type=float,
        default=CLUSTER.background_guard_score,
        metavar="S",
        help="a cluster most of whose windows BirdNET names as a bird with at least this "
        "score is never background (default %(default)s; 1: almost never guarded)",
    )
    c.add_argument(
        "--event-guard-score",
        type=float,
        default=CLUSTER.event_guard_score,
        metavar="S",
        help="the same guard for windows BirdNET names as a dog, gun, siren, fireworks or "
        "power tools with at least this score (default %(default)s; 0: off)",
    )
    c.add_argument(
        "--named-group-score",
        type=float,
        default=CLUSTER.named_group_score,
        metavar="S",
        help="noise and background windows that BirdNET names as the same bird with at "
        "least this score form a cluster of their own (default %(default)s; 0: off)",
    )
    c.add_argument(
        "--link-threshold",
        type=float,
        default=LINK.threshold,
        help="cosine distance under which clusters of different deployments (or of one) "
        "are linked into one sound type (default %(default)s; 0: no linking)",
    )
    c.add_argument("--seed", type=int, default=42, help="seed for UMAP and --sample")
    r = d.add_argument_group("review pages")
    r.add_argument("--montage-cap", type=int, default=48, help="tiles per montage")
    r.add_argument(
        "--audio-per-cluster",
        type=int,
        metavar="N",
        help="audio snippets per cluster on the page (default: one per tile)",
    )
    r.add_argument("--spec-fmin", type=float, default=0.0, metavar="HZ")
    r.add_argument("--spec-fmax", type=float, default=12_000.0, metavar="HZ")
    r.add_argument("--cmap", default="magma", help="matplotlib colour map of the tiles")


def discovery_job(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The options as a platform job's JSON sections (see ``DiscoverySpec``)."""
    return {
        "subset": Subset(
            hours=args.hours,
            start_date=args.start_date,
            end_date=args.end_date,
            sample=args.sample,
            seed=args.seed,
        ).as_dict(),
        "prune": PruneRules(
            drop_silence_db=args.drop_silence,
            labels=args.keep_labels,
            any_bird=args.any_bird,
            min_conf=args.keep_min_conf,
            top_n_per_file=args.top_n_per_file,
        ).as_dict(),
        "cluster": {
            "method": args.method,
            "n_neighbors": args.n_neighbors,
            "min_dist": args.min_dist,
            "n_components": args.n_components,
            "metric": args.metric,
            "pca_components": args.pca,
            "seed": args.seed,
            "min_cluster_size": args.min_cluster_size,
            "min_samples": args.min_samples,
            "selection": args.cluster_selection,
            "background_threshold": args.background_threshold,
            "background_level_db": args.background_level_db,
            "background_guard_score": args.background_guard_score,
            "event_guard_score": args.event_guard_score,
            "named_group_score": args.named_group_score,
        },
        "link": {"threshold": args.link_threshold},
        "review": {
            "montage_cap": args.montage_cap,
            "audio_per_cluster": args.audio_per_cluster,
            "fmin": args.spec_fmin,
            "fmax": args.spec_fmax,
            "cmap": args.cmap,
        },
    }


def add_embeddings_from(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--embeddings-from",
        type=Path,
        metavar="STORE",
        help="start from BirdNET-Analyzer's embeddings instead of embedding the audio: "
        "its 2.x database folder (hoplite.sqlite + usearch.index) or its 1.x "
        ".birdnet.embeddings.txt files; recordings are matched by path, the store's window "
        "settings are used, the audio is still read for montages and clips",
    )


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings: CliSettings,
    add_model_options: Callable[[argparse.ArgumentParser, CliSettings], None],
) -> None:
    d = sub.add_parser(
        "discover",
        help="cluster every sound for review (birdnet-discovery)",
        description=DISCOVER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("root", type=Path, help="folder of deployment folders of recordings")
    d.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    add_discovery_options(d)
    add_model_options(d, settings)
    add_embeddings_from(d)
    add_classifier_options(d)
    d.set_defaults(overlap=DISCOVERY_OVERLAP_S)

    i = sub.add_parser(
        "import-labels",
        help="labels a reviewer wrote in Raven tables, back into the results",
        description="Read the Annotation (or Label) column of Raven selection tables, such "
        "as the raven/*.selections.txt that bdisc discover writes, and store each labelled "
        "row as the label of its window (matched by Begin Path and File Offset). bdisc "
        "review shows them and bdisc export cuts them under their labels.",
    )
    i.add_argument("results", type=Path, help="the discover output folder")
    i.add_argument("tables", type=Path, nargs="+", metavar="TABLE", help="Raven tables")

    e = sub.add_parser(
        "export",
        help="cut labelled clusters into a training set",
        description=EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "--review",
        type=Path,
        required=True,
        help="review sheet: Folder, Cluster (or Cluster #), Label",
    )
    e.add_argument("--results", type=Path, required=True, help="the discover output folder")
    e.add_argument("--out", "-o", type=Path, required=True, help="training-set folder")
    e.add_argument(
        "--overrides",
        type=Path,
        help="per-window labels: folder, file, start_s, label (blank = drop)",
    )
    e.add_argument(
        "--pad",
        type=float,
        default=0.0,
        metavar="S",
        help="context added before and after each window",
    )
    e.add_argument(
        "--sample-rate",
        type=int,
        metavar="HZ",
        help="resample clips (e.g. 48000); default: the recording's own rate",
    )
    e.add_argument(
        "--accept-suggestions",
        action="store_true",
        help="export the whole project: the labelled clusters of every deployment's "
        "review.csv in --results (this sheet's labels for its own folders), and every "
        "unlabelled cluster under the label given to its sound type (SuggestedLabel); "
        "ambiguous suggestions and the background type (0) unless labelled are skipped",
    )


def run_discover(
    args: argparse.Namespace, settings: CliSettings, params: AnalysisParams, progress: bool
) -> int:
    # Imported here: clustering and drawing pull in UMAP and matplotlib, which the
    # other commands do not need at start-up.
    from bdisc.discovery.api import DiscoverConfig, discover

    # the same translation as `bdisc submit` sends to the platform: one path, one result
    config = replace(
        DiscoverConfig.from_spec(args.root, args.out, DiscoverySpec.from_dict(discovery_job(args))),
        params=params,
        group_by=args.group_by,
        workers=args.workers,
        batch_size=args.batch_size,
        force=args.force,
        progress=progress,
        model_dir=settings.model_dir,
        labels=_local_labels(args.out),
        embeddings_from=args.embeddings_from,
        prune_by_results=args.prune_by_results,
        exclude=args.exclude,
    )
    classifier = _classifier(args, settings, params)
    if classifier is not None:
        keep = classifier.check_classes(args.keep_classes)
        config = replace(config, prune=replace(config.prune, classes=keep))
    summary = discover(config, classifier=classifier)
    for g in summary.groups:
        log.info(
            f"{g.name}: {g.clusters} clusters, {g.noise} noise windows of {g.windows}"
            + (" (unchanged)" if g.skipped else "")
        )
    log.info(
        f"{summary.recordings_used} of {summary.recordings_found} recordings, "
        f"{summary.windows_kept} of {summary.windows} windows clustered; "
        f"open {summary.index_html}",
        extra=fields(removed=summary.removed_by_rule),
    )
    return 1 if summary.embed.failed else 0


def add_classifier_options(d: argparse.ArgumentParser) -> None:
    k = d.add_argument_group("pruning by a classifier of your own (bdisc train)")
    k.add_argument(
        "--classifier",
        type=Path,
        metavar="MODEL_DIR",
        help="a model folder from bdisc train: each window's class is its best class "
        "reaching that class's threshold (best-F1 of its validation, else 0.5), or Noise",
    )
    k.add_argument(
        "--keep-classes",
        type=_list,
        default=(),
        metavar="C1,C2",
        help="with --classifier: cluster only the windows of these classes (Noise: the "
        "windows no class reaches)",
    )


def _classifier(
    args: argparse.Namespace, settings: CliSettings, params: AnalysisParams
) -> HeadClassifier | None:
    """The --classifier's head, checked against the run's audio settings."""
    if (args.classifier is None) != (not args.keep_classes):
        raise ConfigError("--classifier and --keep-classes go together")
    if args.classifier is None:
        return None
    from bdisc.training.model_file import load_model
    from bdisc.training.window_classifier import HeadClassifier

    classifier = HeadClassifier(load_model(args.classifier, settings.model_dir))
    classifier.check_params(params)
    return classifier


def run_export(args: argparse.Namespace) -> int:
    overrides = args.overrides or _window_labels(args.results)
    report = export(
        ExportConfig(
            review=args.review,
            results=args.results,
            out=args.out,
            overrides=overrides,
            pad_s=args.pad,
            sample_rate=args.sample_rate,
            accept_suggestions=args.accept_suggestions,
        )
    )
    log.info(
        f"{report.clips} clips: {report.cut} cut, {report.moved} moved, {report.kept} "
        f"unchanged, {report.removed} removed; manifest {args.out / 'manifest.csv'}"
    )
    for clip, why in report.failed:
        log.warning("clip failed", extra=fields(clip=clip, error=why))
    return 1 if report.failed else 0


def _local_labels(results: Path, create: bool = False) -> LabelStore | None:
    """The labels given in ``bdisc review`` for this results folder, if any (``create``:
    a new store if there is none yet)."""
    if not (results / LOCAL_LABELS).is_file() and not create:
        return None
    (results / LOCAL_LABELS).parent.mkdir(parents=True, exist_ok=True)
    from bdisc.adapters.sql_job_store import SqlJobStore, migrate
    from bdisc.adapters.sql_label_store import SqlLabelStore

    migrate(local_labels_url(results))
    return SqlLabelStore(SqlJobStore(local_labels_url(results)).engine)


def run_import_labels(args: argparse.Namespace) -> int:
    store = _local_labels(args.results, create=True)
    assert store is not None
    done = import_raven_labels(args.results, args.tables, store, LOCAL_JOB)
    log.info(
        f"{done.labelled} windows labelled from {len(args.tables)} Raven tables"
        + (f"; {done.unmatched} labelled rows match no window" if done.unmatched else "")
        + f"; bdisc export --results {args.results} uses them"
    )
    return 1 if done.unmatched else 0


def _window_labels(results: Path) -> Path | None:
    """The windows labelled in ``bdisc review`` (a lasso selection), as the overrides
    sheet export reads (folder, file, start_s, label); None when there are none."""
    store = _local_labels(results)
    windows = [r for r in (store.labels(LOCAL_JOB) if store else []) if r.target.kind == "window"]
    if not windows:
        return None
    path = results / LOCAL_LABELS
    path = path.with_name("window_labels.csv")
    rows = [
        [
            r.target.folder,
            r.target.recording.removeprefix(r.target.folder + "/"),
            r.target.start_s,
            r.label,
        ]
        for r in windows
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["folder", "file", "start_s", "label"])
        writer.writerows(rows)
    log.info(f"{len(rows)} window labels from bdisc review ({path})")
    return path
