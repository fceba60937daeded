"""python -m export: consume the export stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.app import stages
from bdisc.app.export_stage import ExportStage
from bdisc.service.settings import ServiceSettings
from bdisc.service.stage_worker import run_stage_worker

if __name__ == "__main__":
    sys.exit(
        run_stage_worker(
            "export",
            stages.EXPORT,
            ServiceSettings,
            lambda b: ExportStage(b.object_store(), b.settings.scratch_dir),
        )
    )
