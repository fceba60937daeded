"""The folders of a discovery job a reviewer labels: its clustered deployments, then the
review groups of its finished searches and suggestions (``search-<job>``,
``suggest-<job>``), labelled like deployments and exported and trained on with them."""

from __future__ import annotations

from bdisc.app import stages
from bdisc.app.job_records import SEARCH, SUGGEST
from bdisc.app.keys import review_group
from bdisc.ports.job_store import JobRecord, JobStore


def review_folders(jobs: JobStore, job: JobRecord) -> list[str]:
    clustered = sorted({i.group for i in jobs.items(job.id, stages.CLUSTER) if i.status == "done"})
    groups = [
        review_group(j.kind, j.id)
        for j in jobs.jobs(job.project)
        if j.kind in (SEARCH, SUGGEST)
        and j.status == "done"
        and j.params.get("discovery_job") == job.id
    ]
    return clustered + groups
