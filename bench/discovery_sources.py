"""The sound types and background beds of the discovery benchmark, from ``../shared/data``.

Twelve sound types from real labelled recordings (see ``../shared/data/MANIFEST.csv`` for
every source and licence), with the abundance a field season might give them: three
common, four in between, five rare (4-6 calls in a whole run), two of them heard at one
site only. Calls come from the sources' own labels where they have them (Screaming Piha,
Golden-winged Warbler, the monitoR survey, the NatureSounds clips) and from an energy
detector elsewhere. Individuals are source recordings (or the recording sites the
NatureSounds clips name).
"""

from __future__ import annotations

import csv
from pathlib import Path

from bdisc.discovery.mixture import Call, SoundType, energy_calls

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _piha(data: Path) -> list[Call]:
    calls = []
    with (data / "pyha" / "ScreamingPiha_Manual_Labels.csv").open() as f:
        for row in csv.DictReader(f):
            src = data / "pyha" / row["IN FILE"].replace(".wav", ".mp3")
            start, length = float(row["OFFSET"]), float(row["DURATION"])
            if src.is_file() and 0.3 <= length <= 2.8:
                calls.append(Call(src, start, start + length, src.stem))
    return calls


def _clips(folder: Path, individual_of: str = "prefix") -> list[Call]:
    """One call per short clip; the individual is the clip name's site prefix."""
    return [
        Call(p, 0.0, 1e9, p.stem.rsplit("-", 1)[0] if individual_of == "prefix" else p.stem)
        for p in sorted(folder.glob("*.wav"))
    ]


def _raven(audio: Path, table: Path, species: str) -> list[Call]:
    with table.open() as f:
        return [
            Call(audio, float(r["Begin Time (s)"]), float(r["End Time (s)"]), audio.stem)
            for r in csv.DictReader(f, delimiter="\t")
            if r["Species"] == species
        ]


def _survey(data: Path, name: str, clip: str) -> list[Call]:
    survey = data / "r_monitoR" / "survey.wav"
    with (data / "r_monitoR" / "survey_anno.csv").open() as f:
        calls = [
            Call(survey, float(r["start.time"]), float(r["end.time"]), "survey")
            for r in csv.DictReader(f)
            if r["name"] == name
        ]
    return [*calls, Call(data / "r_monitoR" / clip, 0.0, 1e9, "clip")]


def sound_types(data: Path = SHARED) -> list[SoundType]:
    gwwa = data / "opensoundscape" / "GWWA_XC"
    hermit = _clips(data / "r_NatureSounds" / "lbh.est") + [
        Call(p, 0.0, 1e9, "ohun") for p in sorted((data / "r_ohun").glob("lbh*.wav"))
    ]
    types = [
        SoundType("Screaming Piha", tuple(_piha(data)), calls_per_run=36),
        SoundType("Long-billed Hermit", tuple(hermit), calls_per_run=30),
        SoundType(
            "Monk Parakeet", tuple(_clips(data / "r_NatureSounds" / "monk.parakeet.est")), 27
        ),
        SoundType(
            "Golden-winged Warbler",
            tuple(
                _raven(
                    gwwa / "13738.mp3",
                    data / "opensoundscape" / "GWWA_XC_AnnoTables" / "13738.Table.1.selections.txt",
                    "GWWA_song",
                )
                + energy_calls(gwwa / "135601.mp3", "135601")
                + [Call(gwwa / "13742.mp3", 0.0, 1e9, "13742")]
            ),
            calls_per_run=15,
        ),
        SoundType(
            "Scaly-breasted Hummingbird",
            tuple(energy_calls(data / "r_warbleR" / "Phae.cuvi.wav", "cuvi", bridge_s=0.6)),
            calls_per_run=15,
        ),
        SoundType(
            "Great Plains Toad",
            tuple(energy_calls(data / "opensoundscape" / "great_plains_toad.wav", "toad")),
            calls_per_run=12,
        ),
        SoundType(
            "Eurasian Magpie",
            tuple(
                energy_calls(
                    data / "birdnet_pi" / "Pica pica_30s.wav",
                    "magpie",
                    min_s=0.5,
                    band_hz=(1500, 8000),
                    rise_db=6,
                )
            ),
            calls_per_run=12,
        ),
        SoundType(
            "Black-throated Green Warbler",
            tuple(_survey(data, "BTNW", "btnw.wav")),
            calls_per_run=6,
        ),
        SoundType("Ovenbird", tuple(_survey(data, "OVEN", "oven.wav")), calls_per_run=5),
        SoundType(
            "Ruffed Grouse",
            tuple(
                energy_calls(data / "opensoundscape" / "rugr_drum.wav", "rugr", band_hz=(40, 500))
            ),
            calls_per_run=4,
        ),
        SoundType(
            "Orange-billed Sparrow",
            tuple(energy_calls(data / "r_warbleR" / "Arre.aura.wav", "arre")),
            calls_per_run=5,
            sites=1,
        ),
        SoundType(
            "Dog",
            tuple(Call(data / "noise" / "scaper_dogbark.wav", 0.0, 1e9, "dog") for _ in (0,)),
            calls_per_run=6,
            sites=1,
        ),
    ]
    return [t for t in types if t.calls]


def background_beds(data: Path = SHARED) -> list[list[Path]]:
    """One kind of background per deployment, cycled: street, night, indoor machines."""
    noise, night = data / "noise", data / "birdvox"
    return [
        [noise / "scaper_street-scene-1.wav", noise / "pst_traffic.wav"],
        [
            night / "BirdVox-scaper_example_background.wav",
            night / "ff3d3feb-3371-44ad-a3b3-85969c2cd5ab.wav",
        ],
        [
            noise / "pst_cafe.wav",
            noise / "pst_fridge.wav",
            noise / "scaper_noise-free-sound-0145.wav",
        ],
    ]
