"""Discovery on real recordings: Screaming Piha, two hermit species and urban noise.

Truth per window comes from the source file: ScreamingPiha*.mp3 -> piha, lbh* and
Phae.long* -> Long-billed Hermit, Phae.cuvi -> Scaly-breasted Hummingbird, noise/ -> noise.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import soundfile as sf

from bdisc.discovery.api import DiscoverConfig, DiscoverSummary, discover
from bdisc.discovery.background import BACKGROUND_CLUSTER
from bdisc.discovery.export import ExportConfig, export
from bdisc.discovery.sheets import read_clusters
from bdisc.pipeline.recording_task import ModelFactory


def truth(file: str, folder: str) -> str:
    if folder == "noise":
        return "noise"
    if "Piha" in file:
        return "piha"
    return "cuvi" if "cuvi" in file else "lbh"


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, factory: ModelFactory
) -> tuple[Path, Path, DiscoverSummary]:
    root = tmp_path_factory.mktemp("rec")
    shutil.copytree(
        data_dir / "discovery", root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.csv")
    )
    out = tmp_path_factory.mktemp("disc")
    summary = discover(DiscoverConfig(root, out, group_by="all", progress=False), factory=factory)
    return root, out, summary


@pytest.mark.model
@pytest.mark.slow
def test_each_species_owns_a_pure_cluster(run: tuple[Path, Path, DiscoverSummary]) -> None:
    _, out, summary = run
    # Pruning is off by default; windows overlap by 1.5 s (190 of them with the tail
    # windows BirdNET-Analyzer 2.4 cuts, 100 without overlap).
    assert summary.windows == summary.windows_kept == 190
    rows = read_clusters(out / "all" / "clusters.csv")
    by_class: dict[str, Counter[int]] = defaultdict(Counter)
    by_cluster: dict[int, Counter[str]] = defaultdict(Counter)
    for r in rows:
        by_class[truth(r.file, r.folder)][r.cluster] += 1
        by_cluster[r.cluster][truth(r.file, r.folder)] += 1
    for name, clusters in by_class.items():
        # Most of each species' windows sit in clusters of that species alone (it may
        # take several: linking names them together, see test_discovery_quality). The
        # noise is where it belongs in the background group too, which also takes the
        # quiet stretches of the faint piha recording (ScreamingPiha5, at -45 dBFS).
        pure = sum(
            n
            for k, n in clusters.items()
            if k >= 0
            and (
                by_cluster[k][name] / sum(by_cluster[k].values()) >= 0.8
                or (name == "noise" and k == BACKGROUND_CLUSTER)
            )
        )
        assert pure / sum(clusters.values()) >= 0.8, (name, clusters)


@pytest.mark.model
@pytest.mark.slow
def test_review_outputs(run: tuple[Path, Path, DiscoverSummary]) -> None:
    _, out, _ = run
    group = out / "all"
    rows = read_clusters(group / "clusters.csv")
    clusters = sorted({r.cluster for r in rows})
    with (group / "review.csv").open(newline="") as f:
        review = list(csv.DictReader(f))
    assert [int(r["Cluster"]) for r in review] == clusters
    assert all(r["Label"] == "" and r["Folder"] == "all" for r in review)
    piha = [r for r in review if "Screaming Piha" in r["TopLabels"].split(";")[0]]
    assert sum(int(r["Size"]) for r in piha) >= 80
    for k in clusters:
        times = (group / f"all_Cluster{k}_times.txt").read_text().splitlines()
        assert times[0].split("\t") == ["Wavfile", "Start time", "Cluster"]
        assert len(times) - 1 == sum(r.cluster == k for r in rows)
        png = group / "montages" / f"cluster_{k}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (group / "map.png").stat().st_size > 10_000
    # Every file the page links exists, and audio snippets are real audio.
    page = (group / "index.html").read_text()
    links = re.findall(r'src="([^"]+)"', page)
    assert links and all((group / link).is_file() for link in links)
    snippet = next(group / link for link in links if link.endswith(".ogg"))
    assert 2.9 < sf.info(snippet).duration < 3.1
    assert "all/index.html" in (out / "index.html").read_text()
    provenance = json.loads((out / "discovery.json").read_text())
    assert provenance["embedding"]["model"] == "BirdNET_GLOBAL_6K_V2.4"
    assert provenance["embedding"]["overlap_s"] == 1.5
    # The automatic cluster size is recorded as chosen (None) and as used (per group).
    assert provenance["cluster"]["min_cluster_size"] is None
    assert provenance["groups"][0]["min_cluster_size"] == 3
    assert provenance["link"] == {"threshold": 0.72}
    assert provenance["cluster"]["background_level_db"] == 2.0


@pytest.mark.model
@pytest.mark.slow
def test_rerun_reuses_everything(
    run: tuple[Path, Path, DiscoverSummary], factory: ModelFactory
) -> None:
    root, out, first = run
    before = (out / "all" / "clusters.csv").read_text()
    again = discover(DiscoverConfig(root, out, group_by="all", progress=False), factory=factory)
    assert again.embed.done == 0 and again.embed.skipped == 16
    assert all(g.skipped for g in again.groups)
    assert [(g.name, g.clusters, g.windows) for g in again.groups] == [
        (g.name, g.clusters, g.windows) for g in first.groups
    ]
    assert (out / "all" / "clusters.csv").read_text() == before


@pytest.mark.model
@pytest.mark.slow
def test_export_and_relabel(run: tuple[Path, Path, DiscoverSummary], tmp_path: Path) -> None:
    _, out, _ = run
    rows = read_clusters(out / "all" / "clusters.csv")
    sizes = Counter(r.cluster for r in rows)

    def largest(name: str) -> int:
        """A sound's largest cluster: the background group for the noise, else outside it."""
        in_group = name == "noise"
        return Counter(
            r.cluster
            for r in rows
            if truth(r.file, r.folder) == name and (r.cluster == BACKGROUND_CLUSTER) == in_group
        ).most_common(1)[0][0]

    home = {name: largest(name) for name in ("piha", "noise", "lbh")}
    assert home["noise"] == BACKGROUND_CLUSTER
    sheet = tmp_path / "review.csv"
    sheet.write_text(
        "Folder,Cluster #,Label\n"
        f"all,{home['piha']},Screaming Piha\nall,{home['noise']},noise\n"
        f"all,{home['lbh']},\n"
    )
    train = tmp_path / "train"
    report = export(ExportConfig(sheet, out, train))
    assert (report.cut, report.moved, report.removed) == (
        sizes[home["piha"]] + sizes[home["noise"]],
        0,
        0,
    )
    piha = sorted((train / "Screaming Piha").glob("*.wav"))
    assert len(piha) == sizes[home["piha"]]
    clip = sf.info(piha[0])
    assert clip.subtype == "PCM_16" and 2.9 < clip.duration <= 3.0
    assert any(re.fullmatch(r"piha_site__ScreamingPiha\d+__\d+\.wav", p.name) for p in piha)
    assert clip.samplerate in (16_000, 22_050, 44_100)  # the recording's own rate

    # Same sheet again: nothing to do.
    again = export(ExportConfig(sheet, out, train))
    assert (again.cut, again.moved, again.kept, again.removed) == (0, 0, again.clips, 0)

    # Relabel piha, drop noise, label the hermit cluster; add a stray file of the user's.
    (train / "notes.txt").write_text("mine")
    sheet.write_text(
        "Folder,Cluster,Label\n"
        f"all,{home['piha']},Lipaugus vociferans\nall,{home['noise']},\n"
        f"all,{home['lbh']},Long-billed Hermit\n"
    )
    third = export(ExportConfig(sheet, out, train))
    assert third.moved == sizes[home["piha"]] and third.cut == sizes[home["lbh"]]
    assert third.removed == sizes[home["noise"]]
    assert not (train / "Screaming Piha").exists() and not (train / "noise").exists()
    assert len(list((train / "Lipaugus vociferans").glob("*.wav"))) == sizes[home["piha"]]
    assert (train / "notes.txt").read_text() == "mine"
    with (train / "manifest.csv").open(newline="") as f:
        manifest = list(csv.DictReader(f))
    assert len(manifest) == sizes[home["piha"]] + sizes[home["lbh"]]
    assert {m["label"] for m in manifest} == {"Lipaugus vociferans", "Long-billed Hermit"}
    assert all((train / m["clip"]).is_file() for m in manifest)

    # A per-window override moves one window to its own label.
    first = next(r for r in rows if r.cluster == home["piha"])
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(
        f"folder,file,start_s,label\n{first.folder},{first.file},{first.start_s},Piha (faint)\n"
    )
    fourth = export(ExportConfig(sheet, out, train, overrides=overrides))
    assert fourth.moved == 1 and len(list((train / "Piha (faint)").glob("*.wav"))) == 1
