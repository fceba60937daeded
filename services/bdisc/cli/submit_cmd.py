"""``bdisc submit``: the same discovery, on a bdisc server."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bdisc.cli.discover_cmd import add_discovery_options, discovery_job
from bdisc.client.submit import submit
from bdisc.discovery.job_spec import DISCOVERY_OVERLAP_S

log = logging.getLogger("bdisc.cli")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "submit",
        help="run bdisc discover on a bdisc server",
        description="Upload a folder of deployment folders to a bdisc server, run a "
        "discovery job there, and download its results into --out in the "
        "layout bdisc discover writes.",
    )
    p.add_argument("root", type=Path, help="folder of deployment folders of recordings")
    p.add_argument("--api", required=True, help="gateway URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", required=True, help="the project's API key")
    p.add_argument("--out", "-o", type=Path, help="where to put the results (with --wait)")
    p.add_argument("--wait", action="store_true", help="wait for the job and download")
    p.add_argument("--prefix", default="", help="only recordings under this folder")
    a = p.add_argument_group("windows and scores (as bdisc discover)")
    a.add_argument("--overlap", type=float, default=DISCOVERY_OVERLAP_S)
    a.add_argument("--min-len", type=float, default=1.0)
    a.add_argument("--sensitivity", type=float, default=1.0)
    add_discovery_options(p, group_by=False)  # the server clusters per deployment folder


def run(args: argparse.Namespace) -> int:
    job = {
        "prefix": args.prefix,
        "analysis": {
            "overlap_s": args.overlap,
            "min_len_s": args.min_len,
            "sensitivity": args.sensitivity,
        },
        **discovery_job(args),
    }
    result = submit(args.root, args.api, args.api_key, job, args.out, wait=args.wait)
    log.info(
        f"job {result.job_id}: {result.status}"
        + (f"; results in {args.out}" if result.downloaded else "")
    )
    if result.refused:
        log.warning(f"{len(result.refused)} recordings refused by the server")
    return 0 if result.status in ("done", "submitted") and not result.refused else 1
