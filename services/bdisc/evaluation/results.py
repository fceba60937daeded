"""What an evaluation found: per-species confusions, curves and the macro summary."""

from __future__ import annotations

from dataclasses import dataclass

from bdisc.evaluation import metrics as m


@dataclass
class SpeciesResult:
    species: str
    at: m.Confusion
    n_truth: int
    n_detected: int
    roc_auc: float
    pr_auc: float
    average_precision: float
    sweep: list[tuple[float, m.Confusion]]
    excluded: str = ""

    def value(self, name: str, c: m.Confusion | None = None) -> float:
        c = c or self.at
        if name.startswith("f") and name[1:].replace(".", "").isdigit():
            return c.f_beta(float(name[1:]))
        return float(getattr(c, name))


@dataclass
class EvalResult:
    species: list[SpeciesResult]
    summary: dict[str, float | str]
    unmapped: list[str]
    ignored_detections: int
