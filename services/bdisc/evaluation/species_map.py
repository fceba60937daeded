"""Where model labels and annotators' codes meet: a table of code, common and scientific name.

``specCodes.csv`` of birdnet-discovery is the model: ``tag, vernacular_name, scientific_name``
(other column names: ``code``/``common_name``/``scientific``). A name is looked up
case-insensitively with surrounding spaces removed, as a code, a common name, a scientific
name or a BirdNET label ``Scientific_Common``; several codes may share a name (two
redpolls -> ``redpoll``). Names the table does not know are kept, normalised, and
reported: never silently dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from bdisc.errors import ConfigError, NotFound


def normalise(name: str) -> str:
    return " ".join(name.strip().split()).casefold()


@dataclass
class SpeciesMap:
    by_name: dict[str, str] = field(default_factory=dict)
    unmapped: set[str] = field(default_factory=set)
    _display: dict[str, str] = field(default_factory=dict)  # unmapped key -> first spelling

    @classmethod
    def read(cls, path: Path) -> SpeciesMap:
        if not path.is_file():
            raise NotFound(f"species map not found: {path}", path=str(path))
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = {c.strip().casefold(): c for c in reader.fieldnames or []}
            code = cols.get("tag") or cols.get("code") or cols.get("species code")
            common = cols.get("vernacular_name") or cols.get("common_name") or cols.get("common")
            sci = cols.get("scientific_name") or cols.get("scientific")
            if not code or not (common or sci):
                raise ConfigError(
                    f"{path}: a species map needs a code column (tag/code) and "
                    "a common or scientific name column"
                )
            result = cls()
            for row in reader:
                tag = (row[code] or "").strip()
                if not tag:
                    continue
                result.by_name.setdefault(normalise(tag), tag)
                for col in (common, sci):
                    if col and (row[col] or "").strip():
                        result.by_name.setdefault(normalise(row[col]), tag)
        return result

    def code(self, name: str) -> str:
        """The code for a name; unknown names come back normalised and are remembered."""
        key = normalise(name)
        if key in self.by_name:
            return self.by_name[key]
        if "_" in name:  # a BirdNET label: try its scientific, then its common name
            scientific, _, common = name.partition("_")
            for part in (scientific, common):
                if normalise(part) in self.by_name:
                    return self.by_name[normalise(part)]
        self.unmapped.add(name.strip())
        return self._display.setdefault(key, " ".join(name.split()))
