"""``bdisc duplicates``: recordings and stretches stored twice under two names."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bdisc.search.api import duplicates
from bdisc.search.duplicates import DuplicateParams
from bdisc.search.manifest import DTYPES, IndexSettings

log = logging.getLogger("bdisc.cli")
DEFAULTS = DuplicateParams()

HELP = """\
Find the same audio stored under two names in a results folder's embeddings: recordings
of the same duration (within one window) whose first --min-windows windows are at
near-zero cosine distance, and stretches of at least --min-windows consecutive windows
of one recording matching consecutive windows of another. Windows of digital silence are
no evidence. Nothing is deleted: OUT/duplicates.csv holds the evidence (recording_a,
recording_b, kind, start/end in each, windows matched, max distance) and
OUT/duplicates_exclude.csv the copies (recording_b's side) as recording, start_s, end_s.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "duplicates",
        help="find recordings and stretches stored twice (never deletes)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--results", type=Path, required=True, help="folder holding embeddings/")
    p.add_argument("--out", "-o", type=Path, help="output folder (default: --results)")
    p.add_argument(
        "--min-windows",
        type=int,
        default=DEFAULTS.min_windows,
        metavar="N",
        help="windows compared per recording, and the shortest stretch (default %(default)s)",
    )
    p.add_argument(
        "--max-distance",
        type=float,
        default=DEFAULTS.max_distance,
        metavar="D",
        help="cosine distance under which two windows are the same audio (default %(default)s)",
    )
    p.add_argument(
        "--index-dtype",
        choices=DTYPES,
        default=IndexSettings().dtype,
        help="how the index stores vectors (default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    result = duplicates(
        args.results,
        args.out,
        DuplicateParams(min_windows=args.min_windows, max_distance=args.max_distance),
        IndexSettings(dtype=args.index_dtype),
    )
    whole = sum(d.kind == "recording" for d in result.duplicates)
    log.info(
        f"{whole} duplicate recordings, {len(result.duplicates) - whole} duplicate stretches "
        f"among {result.index.windows} windows: {result.table}; copies listed in "
        f"{result.exclude}"
    )
    return 0
