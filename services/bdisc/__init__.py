"""bdisc: BirdNET signal discovery.

Public API (everything else is internal and may change):
"""

from __future__ import annotations

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import BdiscError
from bdisc.params import AnalysisParams
from bdisc.pipeline.api import analyze, embed
from bdisc.pipeline.recording_task import RunConfig
from bdisc.version import __version__

__all__ = [
    "AnalysisParams",
    "Bandpass",
    "BdiscError",
    "RunConfig",
    "__version__",
    "analyze",
    "embed",
]
