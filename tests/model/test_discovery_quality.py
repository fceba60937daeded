"""The reduced discovery benchmark: bdisc's default must not fall below the baselines.

Six real sound types from the bundled data (Screaming Piha with its labels, Long-billed
Hermit, Scaly-breasted Hummingbird, Eurasian Magpie, and the monitoR survey's
Black-throated Green Warbler and Ovenbird) placed at random times and 0-20 dB SNR into
real noise beds, two deployments (``bdisc.discovery.mixture``). The full benchmark with
twelve types, three seeds and two variants is ``bench/discovery_quality.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from bdisc.discovery.api import DiscoverConfig, DiscoverSummary, discover
from bdisc.discovery.clustering import ClusterParams, cluster
from bdisc.discovery.export import ExportConfig, export
from bdisc.discovery.linking import SOUND_TYPES_FILE, read_sound_types
from bdisc.discovery.mixture import (
    Call,
    Event,
    MixtureSpec,
    SoundType,
    build,
    energy_calls,
    window_truth,
)
from bdisc.discovery.quality import BASELINES, Quality, score
from bdisc.discovery.recordings import find_recordings
from bdisc.discovery.sheets import read_clusters
from bdisc.discovery.windows import load_windows
from bdisc.pipeline.recording_task import ModelFactory


def sound_types(data: Path) -> list[SoundType]:
    disc = data / "discovery"
    piha = []
    with (disc / "ScreamingPiha_Manual_Labels.csv").open() as f:
        for row in csv.DictReader(f):
            src = disc / "piha_site" / row["IN FILE"].replace(".wav", ".mp3")
            start, length = float(row["OFFSET"]), float(row["DURATION"])
            if src.is_file() and 0.3 <= length <= 2.8:
                piha.append(Call(src, start, start + length, src.stem))
    hermit = [
        Call(p, 0.0, 1e9, p.stem)
        for p in sorted((disc / "hermit_site").glob("*.wav"))
        if "cuvi" not in p.name
    ]
    survey = data / "evaluation" / "survey.wav"
    with (data / "evaluation" / "survey_anno.csv").open() as f:
        songs = [
            (r["name"], float(r["start.time"]), float(r["end.time"])) for r in csv.DictReader(f)
        ]
    return [
        SoundType("Screaming Piha", tuple(piha), calls_per_run=16),
        SoundType("Long-billed Hermit", tuple(hermit), calls_per_run=12),
        SoundType(
            "Scaly-breasted Hummingbird",
            tuple(energy_calls(disc / "hermit_site" / "Phae.cuvi.wav", "cuvi", bridge_s=0.6)),
            calls_per_run=8,
        ),
        SoundType(
            "Eurasian Magpie",
            tuple(
                energy_calls(
                    data / "audio" / "pica_pica_30s.flac",
                    "magpie",
                    min_s=0.5,
                    band_hz=(1500, 8000),
                    rise_db=6,
                )
            ),
            calls_per_run=6,
        ),
        SoundType(
            "Black-throated Green Warbler",
            tuple(Call(survey, a, b, "survey") for n, a, b in songs if n == "BTNW"),
            calls_per_run=4,
            sites=1,
        ),
        SoundType(
            "Ovenbird",
            tuple(Call(survey, a, b, "survey") for n, a, b in songs if n == "OVEN"),
            calls_per_run=4,
        ),
    ]


@pytest.fixture(scope="module")
def mixture(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, factory: ModelFactory
) -> tuple[Path, list[Event], DiscoverSummary]:
    base = tmp_path_factory.mktemp("mixture")
    noise = data_dir / "discovery" / "noise"
    beds = [
        [noise / "street.flac", noise / "pst_traffic.flac"],
        [noise / "pst_cafe.flac", noise / "pst_fridge.flac"],
    ]
    spec = MixtureSpec(deployments=2, recordings=4, variant="distinct", seed=1)
    events = build(base / "recordings", sound_types(data_dir), beds, spec)
    summary = discover(
        DiscoverConfig(
            base / "recordings", base / "out", progress=False, montage_cap=4, audio_per_cluster=0
        ),
        factory=factory,
    )
    return base, events, summary


def _truth(
    events: list[Event],
    folders: list[str],
    files: list[str],
    starts: list[float],
    ends: list[float],
) -> list[str]:
    return [
        window_truth(events, f, n, s, e)
        for f, n, s, e in zip(folders, files, starts, ends, strict=True)
    ]


@pytest.mark.model
@pytest.mark.slow
def test_default_is_not_below_the_baselines(
    mixture: tuple[Path, list[Event], DiscoverSummary],
) -> None:
    base, events, summary = mixture
    out = base / "out"
    rows = [r for g in summary.groups for r in read_clusters(out / g.name / "clusters.csv")]
    truth = _truth(
        events,
        [r.folder for r in rows],
        [r.file for r in rows],
        [r.start_s for r in rows],
        [r.end_s for r in rows],
    )
    assert 0.5 < truth.count("background") / len(truth) < 0.8  # background is the majority
    ours = score(
        [r.folder for r in rows],
        [r.cluster for r in rows],
        truth,
        read_sound_types(out / SOUND_TYPES_FILE),
    )
    windows, _ = load_windows(find_recordings(base / "recordings"), out)
    window_truths = _truth(
        events,
        windows.folder.tolist(),
        windows.file.tolist(),
        windows.start.tolist(),
        windows.end.tolist(),
    )
    baselines: dict[str, Quality] = {}
    for name, params in BASELINES.items():
        labels = np.full(len(windows), -1)
        for folder in sorted(set(windows.folder.tolist())):
            mask = windows.folder == folder
            labels[mask] = cluster(windows.embedding[mask], params).labels
        baselines[name] = score(windows.folder.tolist(), labels.tolist(), window_truths)
    best = max(len(q.discovered) for q in baselines.values())
    assert len(ours.eligible) >= 5
    assert len(ours.discovered) >= best, (
        ours.discovered,
        {n: q.discovered for n, q in baselines.items()},
    )
    assert ours.v_measure >= min(q.v_measure for q in baselines.values())
    # Linking: fewer labels than clusters carrying a discovered type, few wrong links.
    assert ours.labels_linked < ours.labels_unlinked
    assert ours.wrong_link_share <= 0.2


@pytest.mark.model
@pytest.mark.slow
def test_sound_types_and_suggestions_in_the_sheets(
    mixture: tuple[Path, list[Event], DiscoverSummary],
) -> None:
    base, _, summary = mixture
    out = base / "out"
    types = read_sound_types(out / SOUND_TYPES_FILE)
    assert summary.sound_types == len(set(types.values())) > 0
    linked = [
        t
        for t in set(types.values())
        if {f for (f, _), v in types.items() if v == t} == {"site1", "site2"}
    ]
    assert linked, "no sound type spans both deployments"
    with (out / "site1" / "review.csv").open(newline="") as f:
        sheet = list(csv.DictReader(f))
    assert {"Type", "SuggestedLabel"} <= set(sheet[0])
    for row in sheet:
        expected = types.get(("site1", int(row["Cluster"])))
        assert row["Type"] == ("" if expected is None else str(expected))
    assert all(
        r.sound_type == types.get((r.folder, r.cluster))
        for r in read_clusters(out / "site1" / "clusters.csv")
    )


@pytest.mark.model
@pytest.mark.slow
def test_a_small_folder_still_gets_its_obvious_clusters(
    tmp_path: Path, data_dir: Path, factory: ModelFactory
) -> None:
    """Two Screaming Piha recordings and traffic noise, a few dozen windows: bdisc 0.1's
    default (min cluster size 5 on a 2-D map) put every window in noise here."""
    site = tmp_path / "rec" / "site"
    site.mkdir(parents=True)
    for name in ("ScreamingPiha1.mp3", "ScreamingPiha4.mp3"):
        (site / name).write_bytes((data_dir / "discovery" / "piha_site" / name).read_bytes())
    noise = data_dir / "discovery" / "noise" / "pst_traffic.flac"
    (site / noise.name).write_bytes(noise.read_bytes())
    summary = discover(
        DiscoverConfig(tmp_path / "rec", tmp_path / "out", progress=False, audio_per_cluster=0),
        factory=factory,
    )
    rows = read_clusters(tmp_path / "out" / "site" / "clusters.csv")
    assert len(rows) < 60
    clusters = {r.cluster for r in rows if r.cluster >= 0}
    assert summary.groups[0].clusters == len(clusters) >= 2
    piha = {r.cluster for r in rows if "Piha" in r.file}
    traffic = {r.cluster for r in rows if "traffic" in r.file}
    assert piha - {-1} and traffic - {-1}, (piha, traffic)
    assert not (piha & traffic) - {-1}, "a cluster mixes the piha and the traffic"

    # Labelled, then clustered again with other parameters: the labelled sheet is kept.
    sheet = tmp_path / "out" / "site" / "review.csv"
    sheet.write_text(sheet.read_text().replace("site,0,,", "site,0,reviewed,", 1))
    assert "reviewed" in sheet.read_text()
    again = DiscoverConfig(
        tmp_path / "rec",
        tmp_path / "out",
        cluster=ClusterParams(min_cluster_size=4),
        progress=False,
        audio_per_cluster=0,
    )
    discover(again, factory=factory)
    kept = list((tmp_path / "out" / "site").glob("review.*.csv"))
    assert len(kept) == 1 and "site,0,reviewed," in kept[0].read_text()
    assert "reviewed" not in sheet.read_text()


@pytest.mark.model
@pytest.mark.slow
def test_one_label_exports_a_sound_type_in_every_deployment(
    mixture: tuple[Path, list[Event], DiscoverSummary], tmp_path: Path
) -> None:
    base, _, _ = mixture
    out = base / "out"
    types = read_sound_types(out / SOUND_TYPES_FILE)
    folders_of: dict[int, set[str]] = {}
    for (folder, _), type_id in types.items():
        folders_of.setdefault(type_id, set()).add(folder)
    shared = min(t for t, f in folders_of.items() if t != 0 and f == {"site1", "site2"})
    members = {key for key, t in types.items() if t == shared}
    first = min(k for f, k in members if f == "site1")
    # The README's workflow: the deployment's own review.csv, one cluster labelled.
    sheet = tmp_path / "review.csv"
    with (out / "site1" / "review.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["Label"] = "the call" if row["Cluster"] == str(first) else ""
    with sheet.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    windows = [r for f in ("site1", "site2") for r in read_clusters(out / f / "clusters.csv")]
    plain = export(ExportConfig(sheet, out, tmp_path / "plain"))
    assert plain.clips == sum(1 for r in windows if (r.folder, r.cluster) == ("site1", first))
    linked = export(ExportConfig(sheet, out, tmp_path / "linked", accept_suggestions=True))
    assert linked.clips == sum(1 for r in windows if (r.folder, r.cluster) in members)
    assert linked.clips > plain.clips
    assert {p.parent.name for p in (tmp_path / "linked").rglob("*.wav")} == {"the call"}
    clips = list((tmp_path / "linked" / "the call").glob("*.wav"))
    assert {c.name.split("__")[0] for c in clips} == {"site1", "site2"}
