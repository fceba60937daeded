"""Sound types: prototypes, linking, stable ids, suggestions, the background group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bdisc.discovery.background import (
    foreground_scores,
    group_background,
    known_birds,
    quiet_windows,
)
from bdisc.discovery.linking import (
    BACKGROUND_TYPE,
    LinkParams,
    Prototypes,
    link,
    prototypes,
    read_sound_types,
    suggestions,
    write_sound_types,
)
from bdisc.discovery.sheets import WindowRow, annotate_types, read_clusters, write_clusters
from bdisc.errors import ConfigError

DIM = 32


def _deployment(
    rng: np.random.Generator, floor: np.ndarray, calls: dict[int, np.ndarray], n_bg: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """Background windows around ``floor``, and 6 windows per call type (floor + call)."""
    rows = [floor + 0.05 * rng.random((n_bg, DIM))]
    labels = [np.full(n_bg, -1)]
    for k, call in calls.items():
        rows.append(floor + call + 0.05 * rng.random((6, DIM)))
        labels.append(np.full(6, k))
    return np.vstack(rows), np.concatenate(labels)


def test_the_same_call_over_different_backgrounds_is_one_type() -> None:
    rng = np.random.default_rng(0)
    call_a, call_b = np.zeros(DIM), np.zeros(DIM)
    call_a[:4], call_b[10:14] = 3.0, 3.0
    street, night = rng.random(DIM) * 2, rng.random(DIM) * 0.5
    e1, l1 = _deployment(rng, street, {0: call_a, 1: call_b})
    e2, l2 = _deployment(rng, night, {0: call_b, 1: call_a})
    members = link([prototypes("s1", e1, l1), prototypes("s2", e2, l2)], LinkParams())
    types = {(m.folder, m.cluster): m.type_id for m in members}
    assert types[("s1", 0)] == types[("s2", 1)] != types[("s1", 1)] == types[("s2", 0)]
    assert all(m.strength > 0.9 for m in members)
    # No linking: every cluster its own type.
    alone = link([prototypes("s1", e1, l1), prototypes("s2", e2, l2)], LinkParams(0.0))
    assert len({m.type_id for m in alone}) == 4


def test_type_ids_are_stable_and_background_groups_are_type_0(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.random((3, DIM)).astype(np.float32)
    groups = [
        Prototypes("b", np.array([0, 1, 2]), np.array([50, 4, 9]), vectors, background=0),
        Prototypes("a", np.array([0]), np.array([30]), vectors[:1], background=0),
    ]
    first = link(groups, LinkParams(1e-6))
    again = link(list(reversed(groups)), LinkParams(1e-6))
    assert first == again
    by_key = {(m.folder, m.cluster): m.type_id for m in first}
    assert by_key[("a", 0)] == by_key[("b", 0)] == BACKGROUND_TYPE
    assert by_key[("b", 2)] == 1 and by_key[("b", 1)] == 2  # larger type first
    groups[0].save(tmp_path / "p.npz")
    loaded = Prototypes.load(tmp_path / "p.npz")
    assert loaded.folder == "b" and loaded.background == 0
    np.testing.assert_array_equal(loaded.vectors, vectors)
    write_sound_types(tmp_path / "sound_types.csv", first)
    assert read_sound_types(tmp_path / "sound_types.csv") == by_key


def test_suggestions_come_from_type_mates_and_never_overwrite() -> None:
    types = {("a", 1): 1, ("b", 3): 1, ("c", 2): 1, ("a", 2): 2, ("b", 1): 2, ("b", 5): 3}
    labels = {("a", 1): "piha", ("a", 2): "hermit", ("b", 1): "toad", ("b", 3): ""}
    suggested = suggestions(types, labels)
    assert suggested == {("b", 3): "piha", ("c", 2): "piha"}  # type 2 is labelled twice
    assert suggestions(types, {("a", 1): "piha", ("c", 2): "song"})[("b", 3)] == "piha | song"


def test_link_threshold_is_checked() -> None:
    with pytest.raises(ConfigError, match="link threshold"):
        LinkParams(threshold=-1)
    with pytest.raises(ConfigError, match="unknown link parameters: distance"):
        LinkParams.from_dict({"distance": 0.4})
    assert LinkParams.from_dict({"threshold": "0.3"}).threshold == 0.3


def test_background_group_takes_background_like_clusters_only() -> None:
    rng = np.random.default_rng(2)
    floor = rng.random(DIM)
    call = np.zeros(DIM)
    call[:4] = 3.0
    emb = np.vstack(
        [
            floor + 0.02 * rng.random((40, DIM)),  # cluster 0: background
            floor + 0.02 * rng.random((30, DIM)),  # cluster 1: background too
            floor + call + 0.02 * rng.random((10, DIM)),  # cluster 2: a call
            floor + 0.02 * rng.random((5, DIM)),  # noise windows, background-like
        ]
    )
    labels = np.repeat([0, 1, 2, -1], [40, 30, 10, 5])
    recordings = np.array(["r1"] * 85)
    scores = foreground_scores(emb, recordings)
    assert scores[70:80].min() > 0.1 > scores[:70].max()
    grouped, found = group_background(labels, scores, 0.1)
    assert found
    assert (grouped[:70] == 0).all() and (grouped[70:80] == 1).all()
    # Noise windows join the background when they score under the (capped) threshold.
    under = scores[80:] < min(0.1, np.quantile(scores, 0.6))
    assert 0 < under.sum() < 5
    np.testing.assert_array_equal(grouped[80:], np.where(under, 0, -1))
    same, found = group_background(labels, scores, 0.0)
    assert not found and same is labels


def test_a_chorus_is_not_swallowed_by_the_background_group() -> None:
    """Every window holds calls, so every score is low: the threshold is capped at the
    deployment's 60th percentile, and clusters above it are never background."""
    rng = np.random.default_rng(3)
    emb = rng.random((100, DIM))
    scores = foreground_scores(emb, np.array(["r"] * 100))
    labels = np.argsort(np.argsort(scores)) // 10  # cluster k: the k-th tenth by score
    grouped, _ = group_background(labels, scores, threshold=1.0)
    assert (grouped == 0).sum() == 60
    assert sorted(set(grouped[labels >= 6].tolist())) == [1, 2, 3, 4]


def test_a_prototype_without_direction_keeps_a_type_of_its_own() -> None:
    """A cluster that is its deployment's median (digital silence) cannot be linked."""
    vectors = np.zeros((3, DIM), dtype=np.float32)
    vectors[1, :4] = vectors[2, :4] = 0.5
    group = Prototypes("s", np.array([1, 2, 3]), np.array([5, 5, 5]), vectors)
    types = {m.cluster: m.type_id for m in link([group], LinkParams())}
    assert types[2] == types[3] != types[1]


def test_sheets_are_annotated_as_the_reviewer_wrote_them(tmp_path: Path) -> None:
    """The paper's `Cluster #` header, a byte-order mark, an added column and a notes
    row all survive; labels are kept."""
    group = tmp_path / "site"
    group.mkdir()
    write_clusters(
        group / "clusters.csv",
        [WindowRow("site", "a.wav", 0.0, 3.0, k, 1.0, 0.0, 0.0, "x_y", 0.5) for k in (0, 1)],
    )
    sheet = "Folder,Cluster #,Label,Notes\nsite,0,piha,loud\nsite,1,,\ntotal,,,2 clusters\n"
    (group / "review.csv").write_bytes(b"\xef\xbb\xbf" + sheet.encode())
    annotate_types(group, "site", {("site", 0): 4, ("site", 1): 7}, {("site", 1): "hermit"})
    text = (group / "review.csv").read_bytes().decode("utf-8")
    assert text.startswith("\ufeffFolder,Cluster #,Label,Notes,Type,SuggestedLabel\n")
    assert "site,0,piha,loud,4,\n" in text and "site,1,,,7,hermit\n" in text
    assert "total,,,2 clusters,," in text
    assert [r.sound_type for r in read_clusters(group / "clusters.csv")] == [4, 7]
    (group / "review.csv").write_text("Folder,Label\nsite,x\n")
    with pytest.raises(ConfigError, match="no Cluster column"):
        annotate_types(group, "site", {}, {})


def test_background_windows_a_little_above_the_median_level_count_as_quiet() -> None:
    """Background is most of a recording, so half of it lies above the median level:
    the quiet rule allows a margin (2 dB by default); calls, louder, stay out."""
    levels = np.array([-40.0] * 6 + [-38.5] * 4 + [-30.0] * 2)  # median -40
    recordings = np.array(["r"] * 12)
    assert quiet_windows(levels, recordings)[:10].all()
    assert not quiet_windows(levels, recordings)[10:].any()
    assert not quiet_windows(levels, recordings, margin_db=0.0)[6:].any()
    # A background cluster of windows 1.5 dB up joins the group with the margin only
    # (eight noise windows far from the background keep the threshold uncapped).
    levels = np.r_[levels, [-40.0] * 8]
    recordings = np.array(["r"] * 20)
    labels = np.array([0] * 6 + [1] * 4 + [2] * 2 + [-1] * 8)
    scores = np.array([0.05] * 10 + [0.4] * 2 + [0.5] * 8)
    grouped, _ = group_background(labels, scores, 0.2, quiet_windows(levels, recordings))
    assert (grouped[:10] == 0).all() and (grouped[10:12] == 1).all()
    strict = quiet_windows(levels, recordings, margin_db=0.0)
    grouped, _ = group_background(labels, scores, 0.2, strict)
    assert (grouped[:6] == 0).all() and (grouped[6:10] == 1).all() and (grouped[10:12] == 2).all()


def test_birds_birdnet_names_are_never_background() -> None:
    """A cluster that looks and sounds like background but that BirdNET names as a bird
    (at 0.5 or more) keeps its own cluster."""
    labels_ = np.array(
        [
            "Lipaugus vociferans_Screaming Piha",
            "Dog_Dog",
            "Engine_Engine",
            "Lipaugus vociferans_Screaming Piha",
            "",
        ],
        dtype=object,
    )
    known = known_birds(labels_, np.array([0.9, 0.9, 0.9, 0.3, 0.9]), 0.5)
    assert known.tolist() == [True, False, False, False, False]
    # Clusters 0 and 1 are both background-like; BirdNET names most of cluster 1.
    labels = np.array([0] * 4 + [1] * 4 + [2] * 2 + [-1] * 10)
    scores = np.array([0.05] * 8 + [0.4] * 2 + [0.05, 0.05] + [0.5] * 8)
    named = np.zeros(20, dtype=bool)
    named[[4, 5, 6, 10]] = True
    grouped, _ = group_background(labels, scores, 0.2, None, named)
    assert (grouped[:4] == 0).all() and (grouped[4:8] == 1).all() and (grouped[8:10] == 2).all()
    assert grouped[10] == -1 and grouped[11] == 0  # a named noise window stays noise
    grouped, _ = group_background(labels, scores, 0.2)
    assert (grouped[:8] == 0).all()
