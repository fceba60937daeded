"""Deterministic object keys: the same work always lands at the same key.

Embeddings are addressed by content (audio hash + every parameter that changes them +
the recording's path), so a redelivered message, a retried job or another job over the
same recordings finds the result already there and does nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from bdisc.outputs.embeddings import SUFFIX
from bdisc.ports.object_store import check_key

READY_KEY = "healthcheck"  # the gateway's readiness check asks S3 for it (it need not exist)


def audio_prefix(project: str) -> str:
    return f"projects/{check_key(project)}/audio/"


def files_prefix(project: str) -> str:
    """Other uploads of a project: detections, annotations, species maps."""
    return f"projects/{check_key(project)}/files/"


def embedding_key(params_key: str, content_hash: str, rel: str) -> str:
    """Parameters + audio content + the recording's path: the Parquet names its recording,
    so two identical files in two places get one object each (both correctly named)."""
    place = hashlib.sha256(rel.encode()).hexdigest()[:12]
    return f"embeddings/{params_key}/{content_hash}-{place}{SUFFIX}"


def job_results_prefix(project: str, job_id: str) -> str:
    return f"projects/{check_key(project)}/jobs/{check_key(job_id)}/results/"


def results_prefix(project: str, job_id: str, group: str) -> str:
    return f"{job_results_prefix(project, job_id)}{check_key(group)}/"


def trainset_prefix(project: str, job_id: str) -> str:
    """Training clips exported from a discovery job's reviewed labels."""
    return f"projects/{check_key(project)}/jobs/{check_key(job_id)}/trainset/"


def models_prefix(project: str, model_id: str) -> str:
    """A trained model's folder (head, model.json, metrics, BirdNET-Analyzer classifier);
    a model's id is its training job's."""
    return f"projects/{check_key(project)}/models/{check_key(model_id)}/"


def cancel_mark(project: str, job_id: str) -> str:
    """An empty object that says the job was cancelled: workers skip its queued work."""
    return f"projects/{check_key(project)}/jobs/{check_key(job_id)}/cancelled"


def review_group(kind: str, job_id: str) -> str:
    """The folder of a search's or suggestion's review group in its discovery job's
    results (``search-<job>``), labelled there like a deployment's clusters."""
    return f"{kind}-{job_id}"


def relative_to(prefix: str, key: str) -> str:
    """A recording's path below the job's audio prefix (``siteA/r1.wav``)."""
    if not key.startswith(prefix):
        raise ValueError(f"{key} is not under {prefix}")
    return key[len(prefix) :]


def group_of(rel: str, fallback: str = "all") -> str:
    """The deployment of a recording: the first folder of its relative path."""
    parts = PurePosixPath(rel).parts
    return parts[0] if len(parts) > 1 else fallback
