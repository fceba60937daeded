"""``bdisc classify``: a trained head on every stored embedding, detections in
BirdNET-Analyzer's formats. Audio without stored embeddings is embedded first."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bdisc.audio.bandpass import Bandpass
from bdisc.audio.formats import iter_inputs
from bdisc.cli.options import formats
from bdisc.errors import NotFound
from bdisc.model.birdnet import MODEL_FILE
from bdisc.outputs.birdnet_formats import FORMATS, Report
from bdisc.outputs.embeddings import SUFFIX
from bdisc.params import AnalysisParams
from bdisc.pipeline import api
from bdisc.pipeline.recording_task import RunConfig
from bdisc.settings import CliSettings
from bdisc.training.classify import ClassifyConfig, classify
from bdisc.training.model_file import TrainedModel, load_model
from bdisc.training.tflite_export import TFLITE_FILE

log = logging.getLogger("bdisc.cli")

EMBEDDINGS = "embeddings"

HELP = """\
INPUT is a folder holding stored embeddings (the --out of `bdisc embed` or `bdisc
discover`, or its embeddings/ folder): the head is applied to them and BirdNET is not
run. Otherwise INPUT is audio (files or folders): it is embedded into OUT/embeddings/
first (resumable: recordings already embedded there are not run again), with the
band-pass and audio speed the head was trained on. Stored embeddings made with another
rate, window, band-pass, speed or model precision than the head's are refused; a file
that cannot be read is listed in OUT/errors.csv and the others are classified.

Scores are BirdNET-Analyzer's for a custom classifier (its sigmoid of the head's logits,
shifted by --sensitivity), so OUT matches what BirdNET-Analyzer writes with the exported
CustomClassifier.tflite: per recording NAME.BirdNET.results.csv (and the other
--format's), and the combined tables.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "classify",
        help="apply a trained classifier to stored embeddings (or to audio)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", type=Path, metavar="RESULTS_OR_INPUT")
    p.add_argument("--model", "-m", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--out", "-o", type=Path, required=True)
    p.add_argument(
        "--min-conf",
        "--min_conf",
        type=float,
        default=0.25,
        help="minimum confidence of a reported detection (default 0.25)",
    )
    p.add_argument(
        "--sensitivity",
        type=float,
        default=1.0,
        help="0.5 to 1.5, BirdNET-Analyzer 2.x's: adds (s - 1) x 10 to the logits",
    )
    p.add_argument(
        "--merge-consecutive",
        type=int,
        default=1,
        metavar="N",
        help="join up to N touching detections of a class (default 1: off)",
    )
    p.add_argument(
        "--rtype",
        "--format",
        type=lambda t: tuple(formats(t, FORMATS)),
        default=("csv",),
        help="comma-separated: " + ", ".join(FORMATS) + ", or all (default csv)",
    )
    a = p.add_argument_group("embedding audio")
    a.add_argument("--overlap", type=float, default=0.0, metavar="S", help="default 0")
    a.add_argument("--min-len", type=float, default=1.0, metavar="S", help="default 1.0")
    a.add_argument("--workers", type=int, help="worker processes (default: cores)")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")


def stored_embeddings(path: Path) -> Path | None:
    """The stored embeddings ``path`` is or holds, if any: an embeddings file, a folder
    with an ``embeddings/`` folder of them, or a folder of embeddings files and no audio
    (a stray embeddings file among recordings does not make them stored)."""
    if path.is_file():
        return path if path.name.endswith(SUFFIX) else None
    if (path / EMBEDDINGS).is_dir() and any((path / EMBEDDINGS).rglob(f"*{SUFFIX}")):
        return path / EMBEDDINGS
    if path.is_dir() and any(path.rglob(f"*{SUFFIX}")) and not any(iter_inputs([path])):
        return path
    return None


def embedding_params(model: TrainedModel, overlap_s: float, min_len_s: float) -> AnalysisParams:
    """How to embed audio for ``model``: its training embeddings' band-pass and audio
    speed (the rest is the model's), with this run's overlap and minimum length."""
    trained = model.meta.get("embedding") or {}
    default = Bandpass()
    return AnalysisParams(
        overlap_s=overlap_s,
        min_len_s=min_len_s,
        bandpass=Bandpass(
            float(trained.get("bandpass_fmin", default.fmin)),
            float(trained.get("bandpass_fmax", default.fmax)),
        ),
        audio_speed=float(trained.get("audio_speed", 1.0)),
    )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    model = load_model(args.model, settings.model_dir)
    if not args.input.exists():
        raise NotFound(f"no such input: {args.input}", path=str(args.input))
    # the scoring options, checked before any audio is embedded
    Report(
        AnalysisParams(sensitivity=args.sensitivity, min_conf=args.min_conf),
        merge_consecutive=args.merge_consecutive,
    )
    folder = stored_embeddings(args.input)
    embedded, embed_failed = folder is None, 0
    if folder is None:
        summary = api.embed(
            [args.input],
            RunConfig(
                out_dir=args.out,
                params=embedding_params(model, args.overlap, args.min_len),
                workers=args.workers or settings.workers,
                batch_size=settings.batch_size,
                progress=not args.no_progress and sys.stderr.isatty(),
                model_dir=settings.model_dir,
                split_long=settings.split_long,
            ),
        )
        embed_failed = summary.failed
        if summary.failed:
            log.warning(f"{summary.failed} recordings could not be embedded: see errors.csv")
        folder = args.out / EMBEDDINGS
    tflite = model.verified_file(TFLITE_FILE)  # not one left from an earlier training
    config = ClassifyConfig(
        out_dir=args.out,
        formats=tuple(args.rtype),
        min_conf=args.min_conf,
        sensitivity=args.sensitivity,
        merge_consecutive=args.merge_consecutive,
        custom_classifier=str(tflite) if tflite else "",
        model_file=tflite.name if tflite else MODEL_FILE,
        append_errors=embedded,  # after the embedding step's errors.csv
    )
    result = classify(model, [folder], config)
    log.info(
        f"{result.recordings} recordings, {result.windows} windows, "
        f"{result.detections} detections: {args.out}"
    )
    if result.failed:
        log.warning(f"{len(result.failed)} embeddings files could not be read: see errors.csv")
    return 1 if result.failed or embed_failed else 0
