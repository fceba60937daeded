"""python -m evaluation: consume the evaluate stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.app import stages
from bdisc.app.evaluate_stage import EvaluateStage
from bdisc.service.settings import ServiceSettings
from bdisc.service.stage_worker import run_stage_worker

if __name__ == "__main__":
    sys.exit(
        run_stage_worker(
            "evaluation",
            stages.EVALUATE,
            ServiceSettings,
            lambda b: EvaluateStage(b.object_store(), b.settings.scratch_dir),
        )
    )
