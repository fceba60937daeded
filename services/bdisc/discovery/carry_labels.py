"""A deployment clustered again keeps its labels: each labelled cluster's label moves
to the cluster that now holds its windows, or, when its windows went different ways, to
each of those windows (unless a window has a label of its own). Written to the label
store as one revision, source ``carried``, so the history shows what moved where."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bdisc.discovery.relabel import Move
from bdisc.logs import fields
from bdisc.ports.label_store import Change, LabelStore, Target

log = logging.getLogger(__name__)
AUTHOR = "bdisc"


def carry_labels(
    store: LabelStore, job_id: str, folder: str, moves: Sequence[Move]
) -> dict[str, int]:
    """Apply ``moves`` to the deployment's cluster labels; returns what was done."""
    current = {r.target: r.label for r in store.labels(job_id, folder)}
    by_old = {m.old: m for m in moves}
    removals: dict[str, Change] = {}
    settings: dict[str, Change] = {}
    report = {"kept": 0, "moved": 0, "to_windows": 0}
    for target, label in current.items():
        move = by_old.get(target.number) if target.kind == "cluster" else None
        if move is None or move.new == target.number:
            report["kept"] += target.kind == "cluster"
            continue
        removals[target.key] = Change(target, "")
        if move.new is not None:
            new = Target.cluster(folder, move.new)
            settings[new.key] = Change(new, label)
            report["moved"] += 1
            continue
        report["to_windows"] += 1
        for recording, start_s, end_s in move.windows:
            window = Target.window(folder, recording, start_s, end_s)
            if window not in current:  # a person's window label stays as it is
                settings[window.key] = Change(window, label)
    if removals or settings:
        changes = [*removals.values(), *settings.values()]  # a move into a freed number wins
        store.write(job_id, folder, changes, AUTHOR, "carried", expected=None)
        log.info(
            "labels carried to the new clusters",
            extra=fields(job_id=job_id, folder=folder, **report),
        )
    return report
