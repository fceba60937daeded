"""A discovery's parameters as JSON (an API request, a job record, a message), checked."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.discovery.recordings import Subset
from bdisc.errors import ConfigError


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
        # upper bounds: what a shared service can afford
        {"analysis": {"overlap_s": 2.95}},  # a window every 50 ms
        {"analysis": {"top_k": 7000}},
        {"cluster": {"jsd_max_windows": 100_000}},  # the N x N guard
        {"cluster": {"n_components": 900}},
        {"cluster": {"min_samples": 10**9}},
        {"cluster": {"n_neighbors": "many"}},
        {"cluster": {"metric": "haversine"}},
        {"review": {"montage_cap": "lots"}},
        {"review": {"montage_cap": 100_000}},
        {"review": {"audio_per_cluster": 501}},
        {"review": {"fmin": 9000, "fmax": 8000}},
        {"review": {"fmax": "high"}},
        {"prune": {"top_n_per_file": 10**7}},
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


def test_spec_round_trips_through_json() -> None:
    spec = DiscoverySpec.from_dict(
        {
            "analysis": {"overlap_s": 2.0, "species": ["Pica pica_Eurasian Magpie"]},
            "subset": {"hours": "22-4"},
            "prune": {"top_n_per_file": 5, "labels": ["*Piha*"]},
            "cluster": {"method": "jsd", "min_cluster_size": 3},
            "link": {"threshold": 0.0},
            "review": {"montage_cap": 6, "cmap": "gray", "audio_per_cluster": 0},
        }
    )
    assert DiscoverySpec.from_dict(json.loads(json.dumps(spec.as_dict()))) == spec
    default = DiscoverySpec.from_dict({})
    assert DiscoverySpec.from_dict(default.as_dict()) == default
    assert default.params.overlap_s == 1.5  # discovery's own default
