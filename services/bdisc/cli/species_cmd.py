"""``bdisc species``: the species BirdNET's metadata model expects at a place and week,
as BirdNET-Analyzer's ``species`` command; the file it writes is a ``--species-list``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bdisc.fsutil import atomic_write_text
from bdisc.model.birdnet import LABELS_FILE, default_model_dir
from bdisc.model.labels import read_labels
from bdisc.model.location import expected_species
from bdisc.settings import CliSettings

log = logging.getLogger("bdisc.cli")

SPECIES_LIST_NAME = "species_list.txt"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "species",
        help="species expected at a place and week (a species list for --species-list)",
        description="List the species BirdNET's metadata model expects at a latitude, "
        "longitude and week, most likely first, and write them one label per line: the "
        "species list file that --species-list (BirdNET-Analyzer's --slist) reads.",
    )
    p.add_argument("--lat", type=float, required=True, help="latitude, -90 to 90")
    p.add_argument("--lon", type=float, required=True, help="longitude, -180 to 180")
    p.add_argument(
        "--week", type=int, default=-1, help="week of the year 1-48 (4 per month); -1 all year"
    )
    p.add_argument(
        "--threshold",
        "--sf_thresh",
        type=float,
        default=0.03,
        metavar="P",
        help="minimum occurrence score (default 0.03, as BirdNET-Analyzer)",
    )
    p.add_argument(
        "--sortby",
        choices=["freq", "alpha"],
        default="freq",
        help="most likely first (freq, default) or alphabetical",
    )
    p.add_argument(
        "--out",
        "-o",
        type=Path,
        help=f"species list file, or a folder to hold {SPECIES_LIST_NAME} (without it: "
        "label and occurrence score per line on standard output)",
    )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    labels = [label.key for label in read_labels(_labels_path(settings))]
    species = expected_species(
        labels, args.lat, args.lon, args.week, args.threshold, settings.model_dir
    )
    if args.sortby == "alpha":
        species.sort()
    where = f"{len(species)} species expected at {args.lat}/{args.lon}, week {args.week}"
    if args.out is None:
        sys.stdout.write("".join(f"{label}\t{score:.4f}\n" for label, score in species))
        log.info(where)
        return 0
    out: Path = args.out / SPECIES_LIST_NAME if args.out.is_dir() else args.out
    atomic_write_text(out, "".join(f"{label}\n" for label, _ in species))
    log.info(f"{where}: {out}")
    return 0


def _labels_path(settings: CliSettings) -> Path:
    return (settings.model_dir or default_model_dir()) / LABELS_FILE
