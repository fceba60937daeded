"""``bdisc suggest``: the windows a trained head is least sure of, as a review group
(active learning)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bdisc.cli.discover_cmd import _window_labels
from bdisc.errors import NotFound
from bdisc.settings import CliSettings
from bdisc.training.from_results import is_results_folder
from bdisc.training.margin import DEFAULT_EXPLORE, STRATEGIES
from bdisc.training.model_file import load_model
from bdisc.training.suggest import WINDOWS_FILE, SuggestConfig, suggest

log = logging.getLogger("bdisc.cli")

DEFAULT_OUT = "suggested"

HELP = f"""\
Score every unlabelled window of a `bdisc discover` results folder (those its clusters.csv
files list; labelled ones, as `bdisc train` reads them, and those waiting in another
suggestion group are left out) with a head from `bdisc train`, and pick the N it is least
sure of: scores closest to each class's threshold (the best-F1 threshold of its
validation, else 0.5), or with --class to that class's; --strategy top2 takes the gap
between the two best classes instead. The picks are spread over deployments and score
bands, and never overlap in one recording.

OUT (default RESULTS/{DEFAULT_OUT}) is laid out like a discovery group, one cluster per
window: review.csv (fill in the Label column), clusters.csv, montages/, montage.png,
index.html; and {WINDOWS_FILE}, the same windows as a per-window labels sheet (folder,
file, start_s, label). Label one of the two: with OUT inside RESULTS, `bdisc train RESULTS`
learns the labels of OUT/review.csv and `bdisc export --review OUT/review.csv --results
RESULTS` cuts them; or pass the filled {WINDOWS_FILE} as --overrides to either (a blank
label there drops its window).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "suggest",
        help="the windows a trained classifier is least sure of, to label next",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", "-m", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--results", type=Path, required=True, metavar="DIR")
    p.add_argument("--n", type=int, default=50, help="windows to suggest (default 50)")
    p.add_argument("--class", dest="focus", metavar="C", help="only this class's margin")
    p.add_argument("--out", "-o", type=Path, help=f"default: RESULTS/{DEFAULT_OUT}")
    p.add_argument("--seed", type=int, default=0, help="breaks ties (and draws, for random)")
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="margin",
        help="margin (default), top2, or random (the baseline)",
    )
    p.add_argument(
        "--explore",
        type=float,
        default=DEFAULT_EXPLORE,
        metavar="E",
        help="share of the windows drawn at random instead of the most uncertain (default "
        "%(default)s; 0: margin sampling alone)",
    )
    p.add_argument(
        "--overrides",
        type=Path,
        help="per-window labels that count as given (folder, file, start_s, label); "
        "default: the windows labelled in bdisc review",
    )
    p.add_argument(
        "--accept-suggestions",
        action="store_true",
        help="also count the clusters bdisc train --accept-suggestions learns as labelled",
    )
    p.add_argument("--force", action="store_true", help="replace an OUT that holds labels already")


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    if not is_results_folder(args.results):
        raise NotFound(
            f"{args.results} is not a bdisc discover results folder (embeddings/ and */review.csv)",
            path=str(args.results),
        )
    model = load_model(args.model, settings.model_dir)
    result = suggest(
        model,
        SuggestConfig(
            results=args.results,
            out_dir=args.out or args.results / DEFAULT_OUT,
            n=args.n,
            focus=args.focus,
            strategy=args.strategy,
            seed=args.seed,
            explore=args.explore,
            overrides=args.overrides or _window_labels(args.results),
            accept_suggestions=args.accept_suggestions,
            force=args.force,
        ),
    )
    log.info(
        f"{len(result.suggestions)} of {result.pool} unlabelled windows suggested "
        f"({result.skipped} labelled or waiting for review): {result.files[0].parent}"
    )
    return 0
