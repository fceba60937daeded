"""Exporting again after labels changed: keep, move, cut and remove clips."""

from __future__ import annotations

from bdisc.discovery.export import Clip, reconcile


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
