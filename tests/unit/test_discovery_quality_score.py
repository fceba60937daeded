"""The benchmark's scores (bdisc.discovery.quality) on hand-made runs."""

from __future__ import annotations

from bdisc.discovery.quality import score


def test_links_are_wrong_when_majorities_differ_and_mixups_when_two_species_meet() -> None:
    # Deployment a: cluster 1 piha, cluster 2 mostly background (a passing car);
    # deployment b: cluster 1 piha, cluster 2 hermit; noise (-1) is never a carrier.
    folders = ["a"] * 9 + ["b"] * 10
    clusters = [1, 1, 1, 2, 2, 2, 2, -1, -1, 1, 1, 1, 1, 2, 2, 2, 2, 2, -1]  # a, then b
    truth = (
        ["piha"] * 3
        + ["background"] * 3
        + ["piha"]
        + ["hermit", "background"]
        + ["piha"] * 4
        + ["hermit"] * 5
        + ["background"]
    )
    unlinked = score(folders, clusters, truth)
    assert unlinked.discovered == ["hermit", "piha"] and unlinked.links == 0
    assert unlinked.labels_unlinked == unlinked.labels_linked == 3
    # One type for the piha clusters and the car: two links, one wrong, no mix-up.
    types = {("a", 1): 1, ("b", 1): 1, ("a", 2): 1, ("b", 2): 2}
    q = score(folders, clusters, truth, types)
    assert (q.links, q.wrong_links, q.species_mixups) == (2, 1, 0)
    assert q.labels_linked == 2  # piha (one type) and hermit
    # The hermit joins the piha type too: a mix-up of two species.
    q = score(folders, clusters, truth, {**types, ("b", 2): 1})
    assert (q.links, q.wrong_links, q.species_mixups) == (3, 2, 1)
    assert q.labels_linked == 2 and q.mixup_share == 1 / 3  # counted per species
