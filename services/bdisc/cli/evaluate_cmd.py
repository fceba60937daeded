"""``bdisc evaluate``: detections against expert annotations."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bdisc.evaluation.api import evaluate
from bdisc.evaluation.config import BEST_BY, DEFAULT_NON_TARGET, EvalConfig
from bdisc.evaluation.units import GRANULARITIES, UnitOptions
from bdisc.logs import fields

log = logging.getLogger("bdisc.cli")

HELP = """\
Compare detections with expert annotations and write per_species.csv, per_threshold.csv,
summary.csv, PR/ROC/per-species plots and report.md into --out.

Detections: BirdNET-Analyzer result CSVs (per file or combined; .csv.gz too), Raven
selection tables, Kaleidoscope CSVs, or birdnet-discovery's performance_data.csv (netSp,
conf). Truth: performance_data.csv (manSp), annotation tables (recording, species, start,
end), Raven tables, Kaleidoscope-style IN FILE/OFFSET/DURATION/MANUAL ID, or per-minute
presence (recording, minute, species). Files and folders are both accepted.

Granularity: file (a species is present if any window passes the threshold; the paper's),
window (3-s windows; an annotation counts when it overlaps by --min-overlap s), sound (each
annotated sound is found or missed), minute.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "evaluate",
        help="score detections against expert annotations",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--detections", "-d", type=Path, nargs="+", required=True)
    p.add_argument("--truth", "-t", type=Path, nargs="+", required=True)
    p.add_argument("--out", "-o", type=Path, required=True)
    p.add_argument("--granularity", "-g", choices=GRANULARITIES, default="file")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.25,
        help="confidence threshold of per_species.csv (default 0.25)",
    )
    p.add_argument(
        "--sweep",
        type=int,
        default=20,
        metavar="N",
        help="thresholds in the sweep, evenly from 0 to 1 (default 20, the paper's)",
    )
    p.add_argument(
        "--round-sweep",
        action="store_true",
        help="round sweep thresholds to 2 decimals (as birdnet-discovery did)",
    )
    p.add_argument(
        "--species-map",
        type=Path,
        metavar="CSV",
        help="code, common and scientific names (e.g. specCodes.csv)",
    )
    p.add_argument(
        "--min-overlap",
        type=float,
        default=0.5,
        metavar="S",
        help="window level: seconds an annotation must overlap a window",
    )
    p.add_argument("--window", type=float, default=3.0, metavar="S", help="window length")
    p.add_argument(
        "--step", type=float, metavar="S", help="window step (default: read from the detections)"
    )
    p.add_argument(
        "--min-truth",
        type=int,
        default=1,
        metavar="N",
        help="species with fewer true units are left out of macro averages",
    )
    p.add_argument(
        "--non-target",
        default=",".join(DEFAULT_NON_TARGET),
        metavar="P1,P2",
        help="name patterns left out of macro averages (default: %(default)s)",
    )
    p.add_argument(
        "--best-by",
        choices=BEST_BY,
        default="f1",
        help="metric that picks the best threshold (macro average)",
    )
    p.add_argument("--no-plots", action="store_true")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    sweep = [float(t) for t in np.linspace(0.0, 1.0, args.sweep)]
    if args.round_sweep:
        sweep = [round(t, 2) for t in sweep]
    result = evaluate(
        EvalConfig(
            detections=args.detections,
            truth=args.truth,
            out=args.out,
            granularity=args.granularity,
            threshold=args.threshold,
            thresholds=sweep,
            species_map=args.species_map,
            units=UnitOptions(
                window_s=args.window, step_s=args.step, min_overlap_s=args.min_overlap
            ),
            min_truth=args.min_truth,
            non_target=tuple(p.strip() for p in args.non_target.split(",") if p.strip()),
            best_by=args.best_by,
            plots=not args.no_plots,
        )
    )
    s = result.summary
    log.info(
        f"{s['species_included']} of {s['species_total']} species averaged: macro "
        f"precision {s['macro_precision']:.3f}, recall {s['macro_recall']:.3f}, "
        f"ROC-AUC {s['macro_roc_auc']:.3f}; tables in {args.out}",
        extra=fields(excluded=s["excluded_species"]),
    )
    if result.unmapped:
        log.warning(
            f"{len(result.unmapped)} names not in the species map (kept as they are): "
            + ", ".join(result.unmapped[:15])
        )
    if result.ignored_detections:
        log.warning(
            f"{result.ignored_detections} detections are for recordings without "
            "annotations and were not used"
        )
    return 0
