"""The gateway's API under an API fuzzer (Schemathesis, from its own OpenAPI schema) on the
real stack (S3, RabbitMQ, PostgreSQL, the gRPC Spectrogram service): whatever a client
sends, the answer is never a 5xx. Requests carry a valid key and name the key's project
and a finished job with results, so they reach the code behind the checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from bdisc.app import stages
from bdisc.app.keys import audio_prefix, results_prefix
from gateway.app import create_app
from gateway.deps import Deps

CLUSTERS = (
    "folder,file,start_s,end_s,cluster,probability,umap_x,umap_y,top_label,top_confidence,type\n"
    "north,r.wav,0,3,0,1.0,0.1,0.2,Pica pica_Eurasian Magpie,0.5,\n"
)
REVIEW = "Folder,Cluster,Label,Type,SuggestedLabel,Size,TopLabels\nnorth,0,,,,1,magpie (1)\n"


@pytest.fixture
def fuzzed(
    gateway: tuple[TestClient, Deps, dict[str, str]], audio_dir: Any
) -> Iterator[dict[str, Any]]:
    _, deps, k = gateway
    project, job = k["alpha"], "fuzzjob"
    deps.objects.put_file(audio_prefix(project) + "north/r.wav", audio_dir / "soundscape.flac")
    results = results_prefix(project, job, "north")
    deps.objects.put_bytes(results + "clusters.csv", CLUSTERS.encode())
    deps.objects.put_bytes(results + "review.csv", REVIEW.encode())
    deps.jobs.create_job(job, project, "discover", {}, [("north", "north")], stages.CLUSTER)
    deps.jobs.set_item(job, "north", stages.CLUSTER, "done", group="north", output="x")
    deps.jobs.set_job_status(job, "done")
    yield {
        "schema": schemathesis.openapi.from_asgi("/openapi.json", create_app(deps)),
        "key": k["alpha-key"],
        "path": {"project": project, "job_id": job, "folder": "north", "cluster": "0"},
    }


@pytest.mark.integration
def test_no_request_gets_a_server_error(fuzzed: dict[str, Any]) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in fuzzed["schema"].get_all_operations()]
    assert len(operations) > 30  # the whole API, not an empty schema

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, suppress_health_check=list(HealthCheck), deadline=None)
        def probe(case: Any) -> None:
            for name, value in fuzzed["path"].items():
                if case.path_parameters and name in case.path_parameters and name != "cluster":
                    case.path_parameters[name] = value
            response = case.call(headers={"X-API-Key": fuzzed["key"]})
            if response.status_code == 200 and case.formatted_path.endswith("/key:rotate"):
                fuzzed["key"] = response.json()["api_key"]  # the old key stopped working
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:120]}: "
                    f"{response.status_code} {response.text[:200]}"
                )

        probe()
    assert not failures, "\n".join(failures)
