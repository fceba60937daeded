"""A job's review sheets in the object store follow the label store (see
``discovery/labelled_sheet.py``)."""

from __future__ import annotations

from bdisc.app.keys import results_prefix
from bdisc.discovery.labelled_sheet import cluster_labels, with_labels
from bdisc.discovery.sheets import REVIEW_FILE
from bdisc.ports.label_store import LabelStore
from bdisc.ports.object_store import ObjectStore


def render_review(
    objects: ObjectStore, store: LabelStore, project: str, job_id: str, folder: str
) -> None:
    """Rewrite a deployment's review.csv from the store (nothing when it has none)."""
    key = results_prefix(project, job_id, folder) + REVIEW_FILE
    if not objects.exists(key):
        return
    text = objects.get_bytes(key).decode("utf-8")
    labelled = with_labels(text, cluster_labels(store, job_id, folder))
    if labelled != text:
        objects.put_bytes(key, labelled.encode(), content_type="text/csv")
