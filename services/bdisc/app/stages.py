"""Stage names (one work queue each) and the payloads that travel between them."""

from __future__ import annotations

EMBED = "embed"  # one recording -> embeddings Parquet in the object store
CLUSTER = "cluster"  # one deployment's embeddings -> clusters, sheets, montages
EVALUATE = "evaluate"  # detections + annotations (uploaded files) -> metrics, plots, report
EVENTS = "events"  # workers -> orchestrator: what finished, what failed

# Event kinds on the EVENTS stage.
EMBEDDED, EMBED_FAILED = "embedded", "embed_failed"
CLUSTERED, CLUSTER_FAILED = "clustered", "cluster_failed"
EVALUATED, EVALUATE_FAILED = "evaluated", "evaluate_failed"

# Commands on the EVENTS stage (from the gateway to the orchestrator, the one writer).
SUBMIT_DISCOVERY, RETRY_FAILED, CANCEL = "submit_discovery", "retry_failed", "cancel"
SUBMIT_EVALUATION = "submit_evaluation"
