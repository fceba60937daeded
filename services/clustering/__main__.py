"""python -m clustering: consume the cluster stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.app import stages
from bdisc.app.cluster_stage import ClusterStage
from bdisc.service.settings import ServiceSettings
from bdisc.service.stage_worker import run_stage_worker

if __name__ == "__main__":
    sys.exit(
        run_stage_worker(
            "clustering",
            stages.CLUSTER,
            ServiceSettings,
            lambda b: ClusterStage(b.object_store(), b.settings.scratch_dir),
        )
    )
