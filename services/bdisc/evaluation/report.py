"""PR and ROC curves, per-species bars, and a short Markdown report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bdisc.fsutil import atomic_write_text

if TYPE_CHECKING:
    from pathlib import Path

    from bdisc.evaluation.config import EvalConfig
    from bdisc.evaluation.results import SpeciesResult

MAX_CURVES = 12


def _plotted(results: Sequence[SpeciesResult]) -> list[SpeciesResult]:
    included = [r for r in results if not r.excluded and r.n_truth > 0]
    return sorted(included, key=lambda r: -r.n_truth)[:MAX_CURVES]


def write_plots(out: Path, results: Sequence[SpeciesResult]) -> None:
    shown = _plotted(results)
    for kind in ("pr", "roc"):
        fig = Figure(figsize=(7, 6), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for i, r in enumerate(shown):
            c = [conf for _, conf in r.sweep]
            if kind == "pr":
                x = np.array([k.recall for k in c])
                y = np.array([k.precision for k in c])
                label = f"{r.species} (AP {r.average_precision:.2f})"
            else:
                x = np.r_[1.0, [k.fpr for k in c], 0.0]
                y = np.r_[1.0, [k.recall for k in c], 0.0]
                label = f"{r.species} (AUC {r.roc_auc:.2f})"
            ok = ~(np.isnan(x) | np.isnan(y))
            ax.plot(x[ok], y[ok], marker=".", label=label, linestyle="-" if i < 10 else "--")
        if kind == "pr":
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_title("Precision-recall over the threshold sweep")
        else:
            ax.plot([0, 1], [0, 1], color="#999", linestyle=":")
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            ax.set_title("ROC over the threshold sweep")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(out / f"{kind}_curves.png")

    bars = sorted([r for r in results if not r.excluded], key=lambda r: r.species.casefold())
    fig = Figure(figsize=(max(6, 0.35 * len(bars) + 2), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(bars))
    ax.bar(
        x - 0.2,
        [0 if math.isnan(r.at.precision) else r.at.precision for r in bars],
        0.4,
        label="precision",
    )
    ax.bar(
        x + 0.2, [0 if math.isnan(r.at.recall) else r.at.recall for r in bars], 0.4, label="recall"
    )
    ax.set_xticks(x, [r.species for r in bars], rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("Precision and recall per species at the chosen threshold")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "per_species.png")


def _f(v: object) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def write_report(
    out: Path, results: Sequence[SpeciesResult], summary: dict[str, float | str], config: EvalConfig
) -> None:
    lines = [
        f"# Evaluation ({config.granularity} level, threshold {config.threshold:g})",
        "",
        f"{summary['species_included']} of {summary['species_total']} species in the "
        f"averages. Excluded by rule ({summary['excluded_rule']}): "
        f"{summary['excluded_species'] or 'none'}.",
        "",
        "| metric | macro | micro |",
        "|---|---|---|",
    ]
    for name in ("precision", "recall", "f1", "f0.5", "accuracy"):
        lines.append(
            f"| {name} | {_f(summary[f'macro_{name}'])} | {_f(summary[f'micro_{name}'])} |"
        )
    lines += [
        "",
        f"Macro ROC-AUC {_f(summary['macro_roc_auc'])} (rank statistic), "
        f"{_f(summary['macro_roc_auc_sweep'])} (trapezoid over the threshold sweep); "
        f"macro average precision {_f(summary['macro_average_precision'])}.",
        f"Best threshold by macro {config.best_by}: "
        f"{_f(summary[f'best_threshold_by_macro_{config.best_by}'])}.",
        "",
        "| species | truth | detected | precision | recall | F1 | ROC-AUC | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (-r.n_truth, r.species.casefold())):
        lines.append(
            f"| {r.species} | {r.n_truth} | {r.n_detected} | {_f(r.at.precision)} | "
            f"{_f(r.at.recall)} | {_f(r.at.f_beta(1.0))} | {_f(r.roc_auc)} | "
            f"{r.excluded} |"
        )
    lines += [
        "",
        "![PR curves](pr_curves.png)",
        "![ROC curves](roc_curves.png)",
        "![Per species](per_species.png)",
        "",
    ]
    atomic_write_text(out / "report.md", "\n".join(lines))
