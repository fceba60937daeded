"""``bdisc search``: the stored windows nearest to an example, as a review group."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bdisc.errors import ConfigError
from bdisc.model.birdnet import BirdNetV24
from bdisc.model.port import AcousticModel
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.search.api import SearchConfig, search
from bdisc.search.manifest import DTYPES, IndexSettings
from bdisc.settings import CliSettings

log = logging.getLogger("bdisc.cli")

HELP = """\
Find the stored windows (OUT of `bdisc embed` or `bdisc discover`, its embeddings/) most
like an example: a span of a recording (--example REC --start S [--end E]), embedded with
the same model and window settings as the stored windows (one 3-s window centred on a
shorter span, windows covering a longer one; their mean is the query), or a stored
window (--window REC START). An index (RESULTS/index/) is built on first use and updated
with new embeddings files afterwards.

OUT gets matches.csv (rank, distance, recording, start_s, end_s, folder, file; distance
is cosine, 0 = same), montage.png (spectrograms, nearest first) and a review group:
clusters.csv and review.csv with one cluster (1) holding the matches. Label it, then
`bdisc export --review OUT/review.csv --results RESULTS --out TRAINSET`.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "search",
        help="find stored windows like an example (search by example)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--results", type=Path, required=True, help="folder holding embeddings/")
    p.add_argument("--example", type=Path, metavar="REC", help="recording holding the example")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="example start, s")
    p.add_argument(
        "--end", type=float, metavar="E", help="example end, s (default: one window from --start)"
    )
    p.add_argument(
        "--window",
        nargs=2,
        metavar=("REC", "START"),
        help="a stored window as the example: its recording (as in matches.csv) and start",
    )
    p.add_argument("--top", type=int, default=50, metavar="K", help="matches (default 50)")
    p.add_argument(
        "--max-distance",
        type=float,
        metavar="D",
        help="leave out matches farther than this cosine distance (0 to 2)",
    )
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--montage-cap", type=int, default=48, help="tiles in montage.png")
    p.add_argument(
        "--index-dtype",
        choices=DTYPES,
        default=IndexSettings().dtype,
        help="how the index stores vectors (default %(default)s; f32 takes twice the "
        "memory); changing it rebuilds the index",
    )
    p.add_argument("--spec-fmin", type=float, default=0.0, metavar="HZ")
    p.add_argument("--spec-fmax", type=float, default=12_000.0, metavar="HZ")
    p.add_argument("--cmap", default="magma", help="matplotlib colour map of the tiles")


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    window = None
    if args.window is not None:
        try:
            window = (str(args.window[0]), float(args.window[1]))
        except ValueError as exc:
            raise ConfigError(f"--window START must be seconds, got {args.window[1]!r}") from exc

    def model() -> AcousticModel:
        return BirdNetV24(settings.model_dir)

    result = search(
        SearchConfig(
            results=args.results,
            out=args.out,
            audio=args.example,
            start_s=args.start,
            end_s=args.end,
            window=window,
            top=args.top,
            max_distance=args.max_distance,
            montage_cap=args.montage_cap,
            style=SpectrogramStyle(args.spec_fmin, args.spec_fmax, args.cmap),
            index=IndexSettings(dtype=args.index_dtype),
        ),
        model,
    )
    nearest = f"nearest {result.matches[0].distance:.3f}" if result.matches else "none"
    log.info(
        f"{len(result.matches)} matches ({nearest}) among {result.index.windows} windows: "
        f"{args.out}; label {args.out / 'review.csv'}, then bdisc export --review "
        f"{args.out / 'review.csv'} --results {args.results}"
    )
    return 0
