"""The stages: one work queue each, and how many messages a consumer takes at a time.

What travels on each queue is the typed contract in ``messages.py``.
"""

from __future__ import annotations

INGEST = "ingest"  # a job's recordings -> probed, subset, planned work items
EMBED = "embed"  # one recording -> embeddings Parquet in the object store
CLUSTER = "cluster"  # one deployment's embeddings -> clusters, sheets, montages; and linking
EXPORT = "export"  # reviewed labels -> training clips, one folder per label
EVALUATE = "evaluate"  # detections + annotations (uploaded files) -> metrics, plots, report
TRAIN = "train"  # a discovery job's stored embeddings and labels -> a model, detections,
# search matches, duplicates, suggestions (the training service)
EVENTS = "events"  # commands and workers' events -> the orchestrator

# Job items that are not a queue: once every deployment of a job is clustered, their
# clusters are linked into sound types (LinkWork, served on the CLUSTER queue).
LINK = "link"
LINK_ITEM = "sound-types"

# Messages a consumer of each stage takes from the broker at a time. Work items are long
# (a recording, a deployment): one at a time, so N replicas share a queue evenly and a
# crash returns one item. Events are tiny and handled in order by the one orchestrator.
PREFETCH = {INGEST: 1, EMBED: 1, CLUSTER: 1, EXPORT: 1, EVALUATE: 1, TRAIN: 1, EVENTS: 32}
WORK_STAGES = tuple(stage for stage in PREFETCH if stage != EVENTS)  # the workers' queues
