"""``bdisc review RESULTS``: the review app in the browser, for a results folder here.

A command the gateway adds to ``bdisc`` (entry point group ``bdisc.commands``): the
library does not import the gateway; the gateway plugs its app into the CLI."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("bdisc.cli")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "review",
        help="label clusters in the browser (the results of bdisc discover)",
        description="Serve the review app for a bdisc discover output folder on "
        "http://127.0.0.1:PORT/ui/ (this machine only, no key): the map and clusters of "
        "every deployment, tiles that play, labels kept in RESULTS/.bdisc/ and shown in "
        "each review.csv (bdisc export reads them from there).",
    )
    p.add_argument("results", type=Path, help="the bdisc discover output folder")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")


def run(args: argparse.Namespace) -> int:
    from gateway.local import serve  # the gateway's app, with this folder as its store

    log.info(f"review app on http://127.0.0.1:{args.port}/ui/ (Ctrl-C to stop)")
    serve(args.results, args.port)
    return 0
