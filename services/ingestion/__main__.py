"""python -m ingestion: consume the ingest stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.app import stages
from bdisc.app.ingest_stage import IngestStage
from bdisc.service.settings import ServiceSettings
from bdisc.service.stage_worker import run_stage_worker

if __name__ == "__main__":
    sys.exit(
        run_stage_worker(
            "ingestion",
            stages.INGEST,
            ServiceSettings,
            lambda b: IngestStage(b.object_store()),
        )
    )
