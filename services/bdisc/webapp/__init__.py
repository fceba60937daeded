"""The review app: static files (no build step, nothing fetched at run time) served by the
gateway under ``/ui/`` and by ``bdisc review`` for a results folder on this machine."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
