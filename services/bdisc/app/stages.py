"""Stage names (one work queue each) and the payloads that travel between them."""

from __future__ import annotations

INGEST = "ingest"  # a job's recordings -> probed, subset, planned work items
EMBED = "embed"  # one recording -> embeddings Parquet in the object store
CLUSTER = "cluster"  # one deployment's embeddings -> clusters, sheets, montages
# Once every deployment of a job is clustered: their clusters linked into sound types.
# Served by the clustering service on the CLUSTER queue (a payload with "link_groups");
# LINK names the job item.
LINK = "link"
LINK_ITEM = "sound-types"


EXPORT = "export"  # reviewed labels -> training clips, one folder per label
EVALUATE = "evaluate"  # detections + annotations (uploaded files) -> metrics, plots, report
EVENTS = "events"  # workers -> orchestrator: what finished, what failed

# Event kinds on the EVENTS stage.
PLANNED, PLAN_FAILED = "planned", "plan_failed"
EMBEDDED, EMBED_FAILED = "embedded", "embed_failed"
CLUSTERED, CLUSTER_FAILED = "clustered", "cluster_failed"
LINKED, LINK_FAILED = "linked", "link_failed"
EVALUATED, EVALUATE_FAILED = "evaluated", "evaluate_failed"
EXPORTED, EXPORT_FAILED = "exported", "export_failed"

# Commands on the EVENTS stage (from the gateway to the orchestrator, the one writer).
SUBMIT_DISCOVERY, RETRY_FAILED, CANCEL = "submit_discovery", "retry_failed", "cancel"
SUBMIT_EVALUATION, SUBMIT_EXPORT = "submit_evaluation", "submit_export"

# Messages a consumer of each stage takes from the broker at a time. Work items are long
# (a recording, a deployment): one at a time, so N replicas share a queue evenly and a
# crash returns one item. Events are tiny and handled in order by the one orchestrator.
PREFETCH = {INGEST: 1, EMBED: 1, CLUSTER: 1, EXPORT: 1, EVALUATE: 1, EVENTS: 32}


def is_link(payload: dict[str, object]) -> bool:
    """A message on the CLUSTER queue that asks for the link step."""
    return "link_groups" in payload
