"""``bdisc``: BirdNET signal discovery on a laptop (embedded mode)."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bdisc.audio.bandpass import MODEL_FMAX, Bandpass
from bdisc.cli import (
    classify_cmd,
    discover_cmd,
    duplicates_cmd,
    evaluate_cmd,
    search_cmd,
    species_cmd,
    submit_cmd,
    suggest_cmd,
    train_cmd,
)
from bdisc.cli.options import formats as _formats
from bdisc.errors import BdiscError
from bdisc.interop.hoplite_export import HOPLITE_FOLDER, export_hoplite
from bdisc.interop.import_embeddings import Target, import_embeddings
from bdisc.logs import configure, fields
from bdisc.model.birdnet import MODEL_FILE
from bdisc.model.labels import read_species_list
from bdisc.outputs.birdnet_formats import ADDITIONAL_COLUMNS, FORMATS, Report
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig
from bdisc.pipeline.runner import named_inputs
from bdisc.pipeline.summary import ERRORS_FILE, RunSummary
from bdisc.settings import CliSettings
from bdisc.version import __version__

log = logging.getLogger("bdisc.cli")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

EPILOG = """\
exit status: 0 all recordings done, 1 some recordings failed (see errors.csv in --out),
2 bad arguments or settings. Re-running the same command skips recordings already
done with the same content and parameters.
"""


def _add_common(p: argparse.ArgumentParser, settings: CliSettings) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="INPUT",
        help="audio files or folders (searched recursively for .wav .flac .ogg .mp3, any case)",
    )
    p.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        help="output folder (the input tree is mirrored inside it)",
    )
    _add_model_options(p, settings)


def _add_model_options(p: argparse.ArgumentParser, settings: CliSettings) -> None:
    a = p.add_argument_group("windows and filtering")
    a.add_argument(
        "--overlap",
        type=float,
        default=0.0,
        metavar="S",
        help="overlap of consecutive 3-s windows in seconds, 0 to <3 (default 0; "
        "discover: 1.5, so that every call falls whole into some window)",
    )
    a.add_argument(
        "--min-len",
        type=float,
        default=1.0,
        metavar="S",
        help="a last window with less audio than this is dropped; a recording "
        "shorter than this fails (default 1.0, as BirdNET-Analyzer)",
    )
    a.add_argument(
        "--audio-speed",
        "--audio_speed",
        type=float,
        default=1.0,
        metavar="X",
        help="play the audio X times faster before the model hears it; 0.1 makes a 256-kHz "
        "bat recording a 25.6-kHz one; times stay in the recording's seconds (default 1.0, "
        "BirdNET-Analyzer's --audio_speed)",
    )
    a.add_argument(
        "--bandpass-fmin",
        "--fmin",
        type=float,
        default=0.0,
        metavar="HZ",
        help="high-pass cut-off in Hz (default 0: off)",
    )
    a.add_argument(
        "--bandpass-fmax",
        "--fmax",
        type=float,
        default=MODEL_FMAX,
        metavar="HZ",
        help=f"low-pass cut-off in Hz (default {MODEL_FMAX:g}: off)",
    )
    s = p.add_argument_group("scores")
    s.add_argument(
        "--sensitivity",
        type=float,
        default=1.0,
        help="detection sensitivity 0.5 to 1.5, higher gives more detections: BirdNET-"
        "Analyzer 2.x's, which adds (s - 1) x 10 to the logits (default 1.0)",
    )
    s.add_argument(
        "--sigmoid-slope",
        type=float,
        default=1.0,
        metavar="K",
        help="sigmoid slope 0.5 to 1.5 instead of --sensitivity: BirdNET-Analyzer 1.x's and "
        "BirdNET-Pi's scale (their sensitivity s is slope 2 - s; default 1.0)",
    )
    s.add_argument(
        "--no-sigmoid", action="store_true", help="report raw logits instead of 0-1 confidences"
    )
    s.add_argument(
        "--species-list",
        "--slist",
        type=Path,
        metavar="FILE",
        help="keep only these species: one 'Scientific name_Common name' "
        "(or scientific or common name) per line",
    )
    s.add_argument(
        "--lat", type=float, help="latitude: keep species expected here (BirdNET metadata model)"
    )
    s.add_argument("--lon", type=float, help="longitude, with --lat")
    s.add_argument(
        "--week",
        type=int,
        default=-1,
        help="week of the year 1-48 (4 per month) for --lat/--lon; -1 all year",
    )
    s.add_argument(
        "--location-threshold",
        "--sf_thresh",
        type=float,
        default=0.03,
        metavar="P",
        help="minimum occurrence score for --lat/--lon (default 0.03)",
    )
    r = p.add_argument_group("running")
    r.add_argument(
        "--workers",
        type=int,
        default=settings.workers,
        help=f"worker processes (default: cores, here {settings.workers})",
    )
    r.add_argument(
        "--batch-size",
        type=int,
        default=settings.batch_size,
        help=f"windows per model call (default {settings.batch_size})",
    )
    r.add_argument(
        "--force", action="store_true", help="recompute recordings that are already done"
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser(settings: CliSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bdisc",
        description="BirdNET signal discovery: BirdNET V2.4 detections, embeddings, clusters\n"
        "for review and training sets from folders of field recordings.\n"
        "The BirdNET model is licensed CC BY-NC-SA 4.0 (non-commercial, share-alike).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bdisc {__version__}")
    parser.add_argument(
        "--log-level", default=settings.log_level, choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default=settings.log_format, choices=["text", "json"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    an = sub.add_parser(
        "analyze",
        help="species detections in BirdNET-Analyzer's formats",
        description="Detect species in every 3-s window with BirdNET V2.4 and write, per "
        "recording, BirdNET-Analyzer's result files, plus combined tables.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(an, settings)
    an.add_argument(
        "--min-conf",
        "--min_conf",
        type=float,
        default=0.25,
        help="minimum confidence of a reported detection (default 0.25, as BirdNET-Analyzer 2.4)",
    )
    an.add_argument(
        "--top-n",
        "--top_n",
        type=int,
        metavar="N",
        help="report the N best species of every window whatever their confidence "
        "(--min-conf is then ignored)",
    )
    an.add_argument(
        "--merge-consecutive",
        "--merge_consecutive",
        type=int,
        default=1,
        metavar="N",
        help="join up to N touching or overlapping detections of a species into one row "
        "scored by the mean of its three best scores (0 or 1: off; default 1)",
    )
    an.add_argument(
        "--additional-columns",
        "--additional_columns",
        type=lambda t: _formats(t, ADDITIONAL_COLUMNS),
        default=[],
        metavar="COLS",
        help="comma-separated columns appended to the CSV tables: " + ", ".join(ADDITIONAL_COLUMNS),
    )
    an.add_argument(
        "--format",
        default="csv",
        type=lambda t: _formats(t, FORMATS),
        help="comma-separated: csv (.BirdNET.results.csv), table (Raven "
        "selection table), audacity, kaleidoscope, or all (default csv)",
    )

    em = sub.add_parser(
        "embed",
        help="1024-d BirdNET embeddings and top scores per window, in Parquet",
        description="Write, per recording, one Parquet row per 3-s window: recording, "
        "start_s, end_s, embedding (float32[1024]), top labels and scores; the "
        "model and window settings are stored in the file's metadata.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(em, settings)
    em.add_argument("--top-k", type=int, default=5, help="best labels kept per window")
    em.add_argument(
        "--format",
        default="parquet",
        type=lambda t: _formats(t, ("parquet", "birdnet", "hoplite")),
        help="parquet, and/or birdnet (BirdNET-Analyzer 1.x's .birdnet.embeddings.txt), "
        "hoplite (BirdNET-Analyzer 2.4's embeddings database in OUT/hoplite/, which its "
        "search command and perch-hoplite 0.1.x open)",
    )
    discover_cmd.add_embeddings_from(em)
    discover_cmd.add_parsers(sub, settings, _add_model_options)
    evaluate_cmd.add_parser(sub)
    submit_cmd.add_parser(sub)
    species_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    classify_cmd.add_parser(sub)
    suggest_cmd.add_parser(sub)
    search_cmd.add_parser(sub)
    duplicates_cmd.add_parser(sub)
    for command in plugin_commands().values():
        command.add_parser(sub)
    return parser


def params_from(args: argparse.Namespace) -> AnalysisParams:
    species = None
    if args.species_list is not None:
        species = tuple(read_species_list(args.species_list))
    return AnalysisParams(
        overlap_s=args.overlap,
        min_len_s=args.min_len,
        bandpass=Bandpass(args.bandpass_fmin, args.bandpass_fmax),
        sensitivity=args.sensitivity,
        sigmoid_slope=args.sigmoid_slope,
        apply_sigmoid=not args.no_sigmoid,
        min_conf=getattr(args, "min_conf", 0.1),
        top_n=getattr(args, "top_n", None),
        audio_speed=args.audio_speed,
        species=species,
        lat=args.lat,
        lon=args.lon,
        week=args.week,
        location_threshold=args.location_threshold,
        top_k=getattr(args, "top_k", 5),
    )


def _embed(args: argparse.Namespace, config: RunConfig) -> RunSummary:
    """Embed the audio, or import BirdNET-Analyzer's embeddings of it; then, if asked,
    write the run's embeddings as a BirdNET-Analyzer 2.4 database."""
    if args.embeddings_from is not None:
        targets = [Target(path, rel.as_posix()) for path, rel in named_inputs(args.inputs)]
        summary = import_embeddings(
            args.embeddings_from,
            targets,
            args.out,
            config.params,
            config.model_dir,
            args.force,
            text="birdnet" in args.format,
        )
    else:
        summary = api.embed(args.inputs, config, text_export="birdnet" in args.format)
    if "hoplite" in args.format:
        db = export_hoplite(args.out / "embeddings", args.out / HOPLITE_FOLDER)
        log.info(f"BirdNET-Analyzer embeddings database: {db}")
    return summary


def _report(summary: RunSummary, out: Path) -> int:
    log.info(
        f"{summary.job}: {summary.done} done, {summary.skipped} already done, "
        f"{summary.failed} failed; {summary.windows} windows, "
        f"{summary.audio_s / 60:.1f} min of audio; {summary.windows_per_s:.1f} windows/s",
        extra=fields(out=str(out)),
    )
    if summary.failed or summary.warnings:
        log.warning(
            f"{summary.failed} failed, {summary.warnings} warnings: see {out / ERRORS_FILE}"
        )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


@functools.cache
def plugin_commands() -> dict[str, Any]:
    """Commands other installed packages add (entry points ``bdisc.commands``: a module
    with ``add_parser(subparsers)`` and ``run(args) -> int``), e.g. the gateway's
    ``review``."""
    return {ep.name: ep.load() for ep in entry_points(group="bdisc.commands")}


def main(argv: Sequence[str] | None = None) -> int:
    settings = CliSettings()
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    configure(args.log_level, args.log_format)
    progress = not getattr(args, "no_progress", True) and sys.stderr.isatty()
    try:
        if args.command == "export":
            return discover_cmd.run_export(args)
        if args.command == "import-labels":
            return discover_cmd.run_import_labels(args)
        if args.command == "evaluate":
            return evaluate_cmd.run(args)
        if args.command == "submit":
            return submit_cmd.run(args)
        if args.command == "species":
            return species_cmd.run(args, settings)
        if args.command == "train":
            return train_cmd.run(args, settings)
        if args.command == "classify":
            return classify_cmd.run(args, settings)
        if args.command == "suggest":
            return suggest_cmd.run(args, settings)
        if args.command == "search":
            return search_cmd.run(args, settings)
        if args.command == "duplicates":
            return duplicates_cmd.run(args)
        if args.command in plugin_commands():
            return int(plugin_commands()[args.command].run(args))
        if args.workers < 1 or args.batch_size < 1:
            raise BdiscError("--workers and --batch-size must be >= 1")
        if args.command == "discover":
            return discover_cmd.run_discover(args, settings, params_from(args), progress)
        config = RunConfig(
            out_dir=args.out,
            params=params_from(args),
            workers=args.workers,
            batch_size=args.batch_size,
            force=args.force,
            progress=progress,
            model_dir=settings.model_dir,
            split_long=settings.split_long,
        )
        if args.command == "analyze":
            report = Report(
                config.params,
                merge_consecutive=args.merge_consecutive,
                additional_columns=tuple(args.additional_columns),
                species_list_file=str(args.species_list or ""),
                model_file=MODEL_FILE,
            )
            summary = api.analyze(args.inputs, config, args.format, report=report)
        else:
            if "parquet" not in args.format:
                args.format.append("parquet")  # Parquet is what resume and discovery read
            summary = _embed(args, config)
    except BdiscError as exc:
        log.error(exc.message, extra=fields(error=exc.kind, **exc.context))
        return EXIT_USAGE
    return _report(summary, args.out)


if __name__ == "__main__":
    sys.exit(main())
