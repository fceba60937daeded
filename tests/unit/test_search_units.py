"""Search by example and duplicates without the model: the example's windows, the review
group's Folder, and duplicates among stored embeddings files (synthetic vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bdisc.errors import ConfigError
from bdisc.search.duplicate_sheet import read_exclusions, write_exclusions
from bdisc.search.duplicates import (
    RECORDING,
    STRETCH,
    DuplicateParams,
    exclusions,
    find_duplicates,
)
from bdisc.search.example import example_windows, mean_query
from bdisc.search.matches import folder_and_file
from bdisc.search.review_group import group_name
from bdisc.search.window_index import open_index

from .search_helpers import clustered, write_stored


def test_a_short_example_is_one_window_centred_on_it() -> None:
    assert example_windows(10.0, 11.0, 3.0, 1.5) == [(9.0, 12.0)]
    assert example_windows(0.2, 1.0, 3.0, 1.5) == [(0.0, 3.0)]  # not before the start
    assert example_windows(4.0, 7.0, 3.0, 3.0) == [(4.0, 7.0)]


def test_a_long_example_is_covered_up_to_its_end() -> None:
    assert example_windows(0.0, 7.0, 3.0, 1.5) == [
        (0.0, 3.0),
        (1.5, 4.5),
        (3.0, 6.0),
        (4.0, 7.0),
    ]
    assert example_windows(0.0, 6.0, 3.0, 3.0) == [(0.0, 3.0), (3.0, 6.0)]
    with pytest.raises(ConfigError):
        example_windows(5.0, 5.0, 3.0, 3.0)


def test_the_query_is_the_mean_direction() -> None:
    q = mean_query(np.array([[3.0, 0.0], [0.0, 0.5]]))
    np.testing.assert_allclose(q, [2**-0.5, 2**-0.5], rtol=1e-6)


def test_matches_are_named_as_discovery_names_windows(tmp_path: Path) -> None:
    assert folder_and_file("siteA/sub/x.wav", "/d/siteA/sub/x.wav") == ("siteA", "sub/x.wav")
    assert folder_and_file("x.wav", "/data/root/x.wav") == ("root", "x.wav")
    assert group_name(tmp_path / "res" / "searches" / "a", tmp_path / "res") == "searches/a"
    assert group_name(tmp_path / "elsewhere", tmp_path / "res") == "../elsewhere"


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """a: 20 windows; b: a under another name; c: noise with a[5:12] copied in at window
    3; d: unrelated; e and f: the same digital silence (no evidence)."""
    data = clustered(200, seed=11)
    a = data[:20]
    write_stored(tmp_path, "s1/a.wav", a)
    write_stored(tmp_path, "s2/b.wav", a.copy())
    write_stored(tmp_path, "s2/c.wav", np.concatenate([data[20:23], a[5:12], data[23:30]]))
    write_stored(tmp_path, "s2/d.wav", data[100:140])
    write_stored(tmp_path, "s3/e.wav", data[150:160], rms_dbfs=-120.0)
    write_stored(tmp_path, "s3/f.wav", data[150:160], rms_dbfs=-120.0)
    return tmp_path


def test_duplicate_recordings_and_copied_stretches_are_found(stored: Path) -> None:
    index, _ = open_index(stored)
    found = find_duplicates(index, DuplicateParams(min_windows=5, max_distance=0.02))
    got = {(d.recording_a, d.recording_b, d.kind) for d in found}
    assert got == {
        ("s1/a.wav", "s2/b.wav", RECORDING),
        ("s1/a.wav", "s2/c.wav", STRETCH),
        ("s2/b.wav", "s2/c.wav", STRETCH),
    }
    stretch = next(d for d in found if d.recording_a == "s1/a.wav" and d.kind == STRETCH)
    assert (stretch.start_a_s, stretch.end_a_s) == (15.0, 36.0)  # windows 5 to 11
    assert (stretch.start_b_s, stretch.end_b_s) == (9.0, 30.0)  # windows 3 to 9
    assert stretch.windows == 7 and stretch.max_distance < 1e-5

    left_out = exclusions(found)
    assert [(e.recording, e.start_s, e.end_s) for e in left_out] == [
        ("s2/b.wav", 0.0, 60.0),
        ("s2/c.wav", 9.0, 30.0),
    ]
    write_exclusions(stored / "x.csv", left_out)
    assert read_exclusions(stored / "x.csv") == left_out


def test_a_stretch_shorter_than_min_windows_is_not_a_duplicate(stored: Path) -> None:
    index, _ = open_index(stored)
    found = find_duplicates(index, DuplicateParams(min_windows=8))
    assert {d.kind for d in found} == {RECORDING}
