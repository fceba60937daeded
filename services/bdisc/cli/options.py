"""Option parsing shared by the commands (kept apart from main, which imports them all)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def formats(text: str, allowed: Sequence[str]) -> list[str]:
    """A comma-separated choice among ``allowed`` (``all``: every one), for argparse."""
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    if chosen == ["all"]:
        return list(allowed)
    bad = [f for f in chosen if f not in allowed]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(bad) or text!r}; choose from {', '.join(allowed)} or all"
        )
    return chosen
