"""bdisc: BirdNET signal discovery.

Public API (everything else is internal and may change):
"""

from __future__ import annotations

__version__ = "0.1.0"

from bdisc.audio.bandpass import Bandpass
from bdisc.errors import BdiscError
from bdisc.pipeline.api import analyze, embed
from bdisc.pipeline.params import AnalysisParams
from bdisc.pipeline.recording_task import RunConfig

__all__ = [
    "AnalysisParams",
    "Bandpass",
    "BdiscError",
    "RunConfig",
    "__version__",
    "analyze",
    "embed",
]
