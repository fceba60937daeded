"""``bdisc train``: a classification head on stored BirdNET embeddings, with its
validation report, model folder and BirdNET-Analyzer custom classifier."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bdisc.cli.discover_cmd import _window_labels
from bdisc.settings import CliSettings
from bdisc.training.api import TrainConfig, train
from bdisc.training.fit import FitConfig
from bdisc.training.from_results import is_results_folder

log = logging.getLogger("bdisc.cli")

HELP = """\
SOURCE is a `bdisc discover` results folder (the windows `bdisc export` would cut, with
the same labels: a cluster's label from its folder's review.csv, a window's own label from
`bdisc review` or `bdisc import-labels` or --overrides winning over it; the stored
embeddings are used, no audio is read) or a training set TRAINSET/<Label>/*.wav as `bdisc
export` writes it (the clips are embedded first, into OUT/clip_embeddings/). Labels
Noise, Other, Background and Silence (any case) are negatives for every class, not
classes.

OUT receives head.npz and model.json (base model and its SHA-256, classes, training-set
hash, hyper-parameters, seed, metrics), metrics.json, metrics.csv and confusion.csv (per
class on the validation windows that also chose the early-stopping epoch: precision,
recall, PR-AUC, ROC-AUC, best-F1 threshold; a class without validation positives or
negatives gets none), and
CustomClassifier.tflite with CustomClassifier_Labels.txt and _Params.csv: a custom
classifier BirdNET-Analyzer (--classifier) and the birdnet package (load_custom) run.
Validation never puts windows of one recording on both sides.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train",
        help="train a classifier on stored embeddings (BirdNET-Analyzer custom classifier)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", type=Path, metavar="TRAINSET_OR_RESULTS")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="MODEL_DIR")
    h = p.add_argument_group("head")
    h.add_argument("--head", choices=["linear", "mlp"], default="linear")
    h.add_argument("--hidden", type=int, default=256, help="mlp: hidden units (default 256)")
    h.add_argument("--epochs", type=int, default=100, help="at most (default 100)")
    h.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 0.001)")
    h.add_argument("--batch-size", type=int, default=32, help="windows per step (default 32)")
    h.add_argument(
        "--weight-decay", type=float, default=1e-4, help="L2 on the weights (default 0.0001)"
    )
    h.add_argument(
        "--patience",
        type=int,
        default=10,
        help="stop after this many epochs without a better validation loss (default 10)",
    )
    h.add_argument("--seed", type=int, default=0, help="same data and seed: same weights")
    balance = h.add_mutually_exclusive_group()
    balance.add_argument(
        "--upsample",
        action="store_true",
        help="repeat windows of rarer classes up to the largest class's count",
    )
    balance.add_argument(
        "--class-weights",
        action="store_true",
        help="weigh each class's positives by its negatives over its positives",
    )
    v = p.add_argument_group("validation (by recording)")
    split = v.add_mutually_exclusive_group()
    split.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="fraction of recordings held out (default 0.2)",
    )
    split.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="k-fold by recording instead; the kept head is trained on everything",
    )
    r = p.add_argument_group("labels of a results folder")
    r.add_argument(
        "--overrides",
        type=Path,
        help="per-window labels: folder, file, start_s, label (blank = drop); default: "
        "the windows labelled in bdisc review",
    )
    r.add_argument(
        "--accept-suggestions",
        action="store_true",
        help="as bdisc export's: also every unlabelled cluster under the label given to "
        "its sound type (SuggestedLabel)",
    )
    r.add_argument(
        "--exclude",
        type=Path,
        metavar="FILE",
        help="leave out the windows inside these spans (recording, start_s, end_s; bdisc "
        "duplicates writes duplicates_exclude.csv: the second copy of audio stored twice)",
    )
    e = p.add_argument_group("embedding a clip folder")
    e.add_argument(
        "--min-len",
        type=float,
        default=1.0,
        metavar="S",
        help="a clip's last window needs this much audio; shorter clips fail (default 1.0)",
    )
    e.add_argument("--workers", type=int, help="worker processes (default: cores)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-export", action="store_true", help="skip the BirdNET-Analyzer classifier files"
    )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    overrides = args.overrides
    if overrides is None and is_results_folder(args.source):
        overrides = _window_labels(args.source)  # what `bdisc export` would use
    fit = FitConfig(
        head=args.head,
        hidden=args.hidden,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        balance="upsample" if args.upsample else "class-weights" if args.class_weights else "none",
        patience=args.patience,
        weight_decay=args.weight_decay,
        seed=args.seed,
    )
    result = train(
        TrainConfig(
            source=args.source,
            out_dir=args.out,
            fit=fit,
            val_fraction=args.val_fraction,
            folds=args.folds,
            export=not args.no_export,
            overrides=overrides,
            accept_suggestions=args.accept_suggestions,
            exclude=args.exclude,
            min_len_s=args.min_len,
            workers=args.workers or settings.workers,
            batch_size=settings.batch_size,
            progress=not args.no_progress and sys.stderr.isatty(),
            model_dir=settings.model_dir,
            split_long=settings.split_long,
        )
    )
    for c in result.report.classes:
        log.info(
            f"{c.label}: PR-AUC {_fmt(c.average_precision)}, ROC-AUC {_fmt(c.roc_auc)}, "
            f"best F1 {_fmt(c.best_f1)} at {_fmt(c.best_threshold)}"
        )
    log.info(f"model folder: {args.out}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
