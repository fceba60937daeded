"""python -m training: consume the training stage (wiring only): train, classify,
search, duplicates and suggest jobs over stored embeddings."""

from __future__ import annotations

import sys

from bdisc.app import stages
from bdisc.app.training_stage import TrainingStage
from bdisc.service.stage_worker import run_stage_worker
from training.settings import TrainingSettings

if __name__ == "__main__":
    sys.exit(
        run_stage_worker(
            "training",
            stages.TRAIN,
            TrainingSettings,
            lambda b: TrainingStage(b.object_store(), b.settings.scratch_dir, b.settings.model_dir),
        )
    )
