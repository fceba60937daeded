"""BirdNET labels ("Scientific name_Common name") and user species lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bdisc.errors import ConfigError, NotFound


@dataclass(frozen=True)
class Label:
    scientific: str
    common: str

    @property
    def key(self) -> str:
        """The label as BirdNET writes it: ``Scientific_Common``."""
        return f"{self.scientific}_{self.common}"

    @classmethod
    def parse(cls, text: str) -> Label:
        scientific, _, common = text.strip().partition("_")
        return cls(scientific, common or scientific)


def read_labels(path: Path) -> list[Label]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Label.parse(line) for line in lines if line.strip()]


def resolve_species(entries: Iterable[str], labels: Sequence[Label]) -> tuple[int, ...]:
    """Indices of the labels named by ``entries``.

    An entry may be a full BirdNET label (``Poecile atricapillus_Black-capped Chickadee``),
    a scientific name or a common name (case-insensitive). Unknown entries are an error
    that lists them all, so a typo never silently empties the results.
    """
    by_name: dict[str, int] = {}
    for i, label in enumerate(labels):
        for name in (label.key, label.scientific, label.common):
            by_name.setdefault(name.casefold(), i)
    chosen: list[int] = []
    unknown: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        index = by_name.get(entry.casefold())
        if index is None:
            unknown.append(entry)
        elif index not in chosen:
            chosen.append(index)
    if unknown:
        raise ConfigError(
            f"{len(unknown)} species not in the model's labels: {', '.join(unknown[:10])}"
            + (" ..." if len(unknown) > 10 else ""),
            unknown=unknown,
        )
    return tuple(sorted(chosen))


def read_species_list(path: Path) -> list[str]:
    """Entries of a BirdNET-Analyzer species list file (one ``Scientific_Common`` per line)."""
    if not path.is_file():
        raise NotFound(f"species list not found: {path}", path=str(path))
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
