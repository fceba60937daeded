"""A platform job's parameters as JSON, the export reconciliation, and error mapping."""

from __future__ import annotations

import io
import json
import logging
from datetime import date

import pytest

from bdisc.discovery.export import Clip, reconcile
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.discovery.recordings import Subset
from bdisc.errors import ConfigError, NotFound, Retryable, from_grpc_code, grpc_code
from bdisc.logs import job_context, make_handler


def test_subset_round_trips_through_json() -> None:
    subset = Subset(hours=(22, 4), start_date=date(2023, 6, 1), sample=0.5, seed=7)
    again = Subset.from_dict(json.loads(json.dumps(subset.as_dict())))
    assert again == subset
    assert Subset.from_dict({"hours": "6-9"}).hours == (6, 9)
    assert Subset.from_dict({}) == Subset()


@pytest.mark.parametrize(
    "wrong",
    [
        {"subset": {"hours": "25-3"}},
        {"subset": {"start_date": "June"}},
        {"subset": {"start_date": "2023-06-02", "end_date": "2023-06-01"}},
        {"subset": {"sample": 0}},
        {"subset": {"every": 2}},
        {"prune": {"min_conf": 1.5}},
        {"prune": {"colour": "red"}},
        {"cluster": {"n_neighbors": 1}},
        {"cluster": {"neighbours": 15}},
        {"review": {"montage_cap": 0}},
        {"review": {"width": 3}},
        {"analysis": {"sensitivity": 9}},
    ],
)
def test_spec_refuses_what_discover_refuses(wrong: dict[str, dict[str, object]]) -> None:
    with pytest.raises(ConfigError):
        DiscoverySpec.from_dict(wrong)


def test_spec_reads_every_section() -> None:
    spec = DiscoverySpec.from_dict(
        {
            "analysis": {"overlap_s": 1.0},
            "subset": {"hours": [5, 9]},
            "prune": {"labels": ["*Piha*"], "min_conf": 0.2},
            "cluster": {"min_cluster_size": 3},
            "review": {"montage_cap": 12, "fmax": 8000, "cmap": "gray"},
        }
    )
    assert spec.params.overlap_s == 1.0 and spec.subset.hours == (5, 9)
    assert spec.prune.labels == ("*Piha*",) and spec.cluster.min_cluster_size == 3
    assert (spec.montage_cap, spec.style.fmax, spec.style.cmap) == (12, 8000, "gray")


def clip(name: str, label: str, start: float) -> Clip:
    return Clip(name, label, "site", "r.wav", "audio/site/r.wav", start, start + 3, 1, 0.0, None)


def test_reconcile_keeps_moves_cuts_and_removes() -> None:
    previous = [clip("a/r_0.wav", "a", 0), clip("a/r_3.wav", "a", 3), clip("a/r_6.wav", "a", 6)]
    wanted = [clip("a/r_0.wav", "a", 0), clip("b/r_3.wav", "b", 3), clip("b/r_9.wav", "b", 9)]
    todo = reconcile(wanted, previous, lambda name: True)
    assert [c.clip for c in todo.keep] == ["a/r_0.wav"]
    assert [(old, c.clip) for old, c in todo.move] == [("a/r_3.wav", "b/r_3.wav")]
    assert [c.clip for c in todo.cut] == ["b/r_9.wav"]
    assert todo.remove == ["a/r_6.wav"]
    # A clip of the last export that has gone missing is cut again, not moved.
    todo = reconcile(wanted, previous, lambda name: name != "a/r_3.wav")
    assert [c.clip for c in todo.cut] == ["b/r_3.wav", "b/r_9.wav"]


@pytest.mark.parametrize("error", [NotFound("x"), ConfigError("x"), Retryable("x")])
def test_grpc_codes_map_back_to_the_same_errors(error: Exception) -> None:
    again = from_grpc_code(grpc_code(error), "x")
    assert grpc_code(again) == grpc_code(error)
    assert type(again).http_status == type(error).http_status  # type: ignore[attr-defined]


def test_job_context_stamps_lines_and_explicit_fields_win() -> None:
    stream = io.StringIO()
    log = logging.getLogger("bdisc.test.context")
    log.addHandler(make_handler(stream, "json"))
    log.setLevel(logging.INFO)
    with job_context("j1"):
        log.info("a")
        log.info("b", extra={"bdisc_fields": {"job_id": "other"}})
    log.info("c")
    rows = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r.get("job_id") for r in rows] == ["j1", "other", None]
