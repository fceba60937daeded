"""``evaluate``: detections against expert annotations -> tables, plots and a report.

Outputs in ``out``:
  per_species.csv    one row per species at the chosen threshold (+ AUCs over all thresholds)
  per_threshold.csv  one row per species and threshold of the sweep
  summary.csv        macro (mean over included species) and micro (pooled counts) values,
                     the best threshold by the chosen metric, the exclusion rules
  pr_curves.png, roc_curves.png, per_species.png, report.md
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bdisc.errors import ConfigError
from bdisc.evaluation import metrics as m
from bdisc.evaluation.config import EvalConfig
from bdisc.evaluation.readers import read_detections, read_truth
from bdisc.evaluation.results import EvalResult, SpeciesResult
from bdisc.evaluation.species_map import SpeciesMap
from bdisc.evaluation.units import UnitTable, build
from bdisc.fsutil import atomic_write_text


def _confusions(table: UnitTable, j: int, threshold: float) -> m.Confusion:
    truth, score = table.truth[:, j], table.score[:, j]
    if table.granularity != "sound":
        return m.confusion(truth, score, threshold)
    found = int((truth & (score >= threshold)).sum())
    false = (table.false_detections or {}).get(table.species[j], np.zeros(0))
    return m.Confusion(found, int((false >= threshold).sum()), int(truth.sum()) - found, None)


def _exclusion(species: str, n_truth: int, config: EvalConfig) -> str:
    if any(fnmatch.fnmatchcase(species.casefold(), p.casefold()) for p in config.non_target):
        return "non-target class"
    if n_truth < config.min_truth:
        return f"fewer than {config.min_truth} true units"
    return ""


def score_table(table: UnitTable, config: EvalConfig) -> list[SpeciesResult]:
    results = []
    for j, name in enumerate(table.species):
        truth, score = table.truth[:, j], table.score[:, j]
        n_truth = int(truth.sum())
        at = _confusions(table, j, config.threshold)
        if table.granularity == "sound":
            roc = pr = ap = math.nan  # no negatives to rank against
        else:
            roc, pr, ap = (
                m.roc_auc(truth, score),
                m.pr_auc(truth, score),
                m.average_precision(truth, score),
            )
        results.append(
            SpeciesResult(
                name,
                at,
                n_truth,
                at.tp + at.fp,
                roc,
                pr,
                ap,
                [(t, _confusions(table, j, t)) for t in config.thresholds],
                _exclusion(name, n_truth, config),
            )
        )
    return results


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarise(results: Sequence[SpeciesResult], config: EvalConfig) -> dict[str, float | str]:
    included = [r for r in results if not r.excluded]
    pooled = sum((r.at for r in included), m.Confusion(0, 0, 0, 0))
    summary: dict[str, float | str] = {
        "species_total": len(results),
        "species_included": len(included),
    }
    for name in ("precision", "recall", "accuracy", "f1", "f0.5", "f0.25", "f0.1"):
        summary[f"macro_{name}"] = _mean([r.value(name) for r in included])
        summary[f"micro_{name}"] = SpeciesResult("", pooled, 0, 0, 0, 0, 0, []).value(name)
    for name in ("roc_auc", "pr_auc", "average_precision"):
        summary[f"macro_{name}"] = _mean([getattr(r, name) for r in included])
    summary["macro_roc_auc_sweep"] = _mean(
        [
            m.sweep_auc(
                np.array([c.fpr for _, c in r.sweep]), np.array([c.recall for _, c in r.sweep])
            )
            for r in included
        ]
    )
    best_t, best_v = math.nan, -math.inf
    for k, t in enumerate(config.thresholds):
        v = _mean([r.value(config.best_by, r.sweep[k][1]) for r in included])
        if not math.isnan(v) and v > best_v:
            best_t, best_v = t, v
    summary["threshold"] = config.threshold
    summary[f"best_threshold_by_macro_{config.best_by}"] = best_t
    summary[f"best_macro_{config.best_by}"] = best_v if best_v > -math.inf else math.nan
    summary["excluded_rule"] = (
        f"non-target patterns {', '.join(config.non_target)}; "
        f"fewer than {config.min_truth} true units"
    )
    summary["excluded_species"] = "; ".join(
        f"{r.species} ({r.excluded})" for r in results if r.excluded
    )
    return summary


def _fmt(v: float | int | str | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([[_fmt(v) for v in row] for row in rows])  # type: ignore[arg-type]
    atomic_write_text(path, buf.getvalue())


def write_tables(
    out: Path, results: Sequence[SpeciesResult], summary: dict[str, float | str], granularity: str
) -> None:
    _write_csv(
        out / "per_species.csv",
        [
            "species",
            "tp",
            "tn",
            "fp",
            "fn",
            "accuracy",
            "precision",
            "recall",
            "n_truth",
            "n_detected",
            "f1",
            "f0.5",
            "f0.25",
            "f0.1",
            "roc_auc",
            "pr_auc",
            "average_precision",
            "excluded",
        ],
        [
            [
                r.species,
                r.at.tp,
                r.at.tn,
                r.at.fp,
                r.at.fn,
                r.at.accuracy,
                r.at.precision,
                r.at.recall,
                r.n_truth,
                r.n_detected,
                *(r.at.f_beta(b) for b in m.BETAS),
                r.roc_auc,
                r.pr_auc,
                r.average_precision,
                r.excluded,
            ]
            for r in results
        ],
    )
    _write_csv(
        out / "per_threshold.csv",
        ["species", "threshold", "tp", "fp", "tn", "fn", "tpr", "fpr", "precision", "f1"],
        [
            [
                r.species,
                round(t, 6),
                c.tp,
                c.fp,
                c.tn,
                c.fn,
                c.recall,
                c.fpr,
                c.precision,
                c.f_beta(1.0),
            ]
            for r in results
            for t, c in r.sweep
        ],
    )
    _write_csv(
        out / "summary.csv", ["metric", "value"], [["granularity", granularity], *summary.items()]
    )


def evaluate(config: EvalConfig) -> EvalResult:
    smap = SpeciesMap.read(config.species_map) if config.species_map else SpeciesMap()
    truth, recordings = read_truth(config.truth, smap)
    if not recordings:
        raise ConfigError("the truth names no recordings")
    detections = read_detections(config.detections, smap)
    table = build(config.granularity, truth, recordings, detections, config.units)
    results = score_table(table, config)
    summary = summarise(results, config)
    summary["units"] = len(table.units)
    summary["unmapped_names"] = "; ".join(sorted(smap.unmapped)) if config.species_map else ""
    summary["detections_outside_truth_recordings"] = table.ignored_detections
    config.out.mkdir(parents=True, exist_ok=True)
    write_tables(config.out, results, summary, config.granularity)
    if config.plots:
        from bdisc.evaluation.report import write_plots, write_report

        write_plots(config.out, results)
        write_report(config.out, results, summary, config)
    return EvalResult(results, summary, sorted(smap.unmapped), table.ignored_detections)
