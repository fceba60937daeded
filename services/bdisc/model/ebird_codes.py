"""eBird species codes of BirdNET V2.4's labels, as BirdNET-Analyzer writes them in Raven
tables ("Species Code": ``bkcchi``).

The table ships with bdisc (``data/ebird_codes_2024E.tsv``, derived from BirdNET-Analyzer
2.4.0's ``eBird_taxonomy_codes_2024E.json``, MIT). A label without a code (a custom
classifier's, say) stands for itself, as in BirdNET-Analyzer.
"""

from __future__ import annotations

import functools
from importlib.resources import files

CODES_FILE = "ebird_codes_2024E.tsv"


@functools.cache
def ebird_codes() -> dict[str, str]:
    """``Scientific_Common`` label -> eBird code."""
    text = files("bdisc.model").joinpath("data", CODES_FILE).read_text(encoding="utf-8")
    pairs = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {label: code for label, code in pairs}


def species_code(label_key: str) -> str:
    return ebird_codes().get(label_key, label_key)


@functools.cache
def labels_by_code() -> dict[str, str]:
    """eBird code -> label (for tables that name species by code)."""
    return {code: label for label, code in ebird_codes().items()}
