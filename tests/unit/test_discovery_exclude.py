"""Spans left out of a discovery (bdisc duplicates' duplicates_exclude.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bdisc.discovery.exclude import excluded, read_exclusions
from bdisc.errors import ConfigError, NotFound


def test_windows_within_a_listed_span_are_left_out(tmp_path: Path) -> None:
    sheet = tmp_path / "duplicates_exclude.csv"
    sheet.write_text("recording,start_s,end_s\nsite/b.wav,0,60\nsite/c.wav,30.0,36.0\n")
    spans = read_exclusions(sheet)
    assert spans == {"site/b.wav": [(0.0, 60.0)], "site/c.wav": [(30.0, 36.0)]}
    recordings = np.array(["site/a.wav", "site/b.wav", "site/c.wav", "site/c.wav", "site/c.wav"])
    starts = np.array([0.0, 57.0, 30.0, 33.0, 34.5])
    ends = starts + 3.0
    # A whole recording, a window inside a stretch, and one reaching past its end.
    assert excluded(recordings, starts, ends, spans).tolist() == [False, True, True, True, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,start,end\nx,0,1\n", "needs the columns"),
        ("recording,start_s,end_s\nx,zero,1\n", "line 2"),
        ("recording,start_s,end_s\nx,5,1\n", "before start_s"),
    ],
)
def test_a_bad_list_is_refused_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    sheet = tmp_path / "x.csv"
    sheet.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_exclusions(sheet)
    with pytest.raises(NotFound):
        read_exclusions(tmp_path / "missing.csv")
