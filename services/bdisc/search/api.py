"""The domain entry points of search: search by example, and duplicates (see
``duplicates``). The CLI calls these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bdisc.errors import ConfigError
from bdisc.logs import fields
from bdisc.model.port import AcousticModel
from bdisc.render.montage import SpanReader
from bdisc.render.spectrogram import SpectrogramStyle
from bdisc.search.duplicate_sheet import (
    DUPLICATES_FILE,
    EXCLUDE_FILE,
    write_duplicates,
    write_exclusions,
)
from bdisc.search.duplicates import Duplicate, DuplicateParams, exclusions, find_duplicates
from bdisc.search.example import Example, embed_example, stored_example
from bdisc.search.manifest import IndexSettings
from bdisc.search.matches import Match, nearest
from bdisc.search.review_group import (
    MATCHES_FILE,
    MONTAGE_FILE,
    write_matches,
    write_montage,
    write_review_group,
)
from bdisc.search.window_index import IndexUpdate, open_index

log = logging.getLogger(__name__)

# Cosine distance runs from 0 (same direction) to 2 (opposite).
MAX_COSINE_DISTANCE = 2.0


@dataclass(frozen=True)
class SearchConfig:
    """A search by example: ``audio`` from ``start_s`` to ``end_s`` (default: one window),
    or the stored window ``window`` (recording, start)."""

    results: Path  # the folder whose embeddings/ are searched
    out: Path
    audio: Path | None = None
    start_s: float = 0.0
    end_s: float | None = None
    window: tuple[str, float] | None = None
    top: int = 50
    max_distance: float | None = None
    montage_cap: int = 48
    style: SpectrogramStyle = field(default_factory=SpectrogramStyle)
    index: IndexSettings = field(default_factory=IndexSettings)

    def __post_init__(self) -> None:
        if (self.audio is None) == (self.window is None):
            raise ConfigError("give an example: a recording and its start, or a stored window")
        if self.top < 1:
            raise ConfigError(f"--top must be >= 1, got {self.top}")
        if self.max_distance is not None and not 0 <= self.max_distance <= MAX_COSINE_DISTANCE:
            raise ConfigError(f"--max-distance is a cosine distance, 0 to 2: {self.max_distance}")
        if self.montage_cap < 1:
            raise ConfigError(f"--montage-cap must be >= 1, got {self.montage_cap}")


@dataclass(frozen=True)
class SearchResult:
    example: Example
    matches: list[Match]
    index: IndexUpdate
    group: str  # the review sheet's Folder


def search(
    config: SearchConfig,
    model: Callable[[], AcousticModel],
    read_span: SpanReader | None = None,
) -> SearchResult:
    """Bring the index up to date, find the windows nearest to the example, and write
    matches.csv, montage.png and a review group (clusters.csv, review.csv) into ``out``.
    ``model`` is called only when the example is audio to embed; ``read_span`` reads the
    montage's audio (default: the files the recordings were read from)."""
    index, update = open_index(config.results, config.index)
    if config.audio is not None:
        window_s = float(index.provenance.get("window_s", 3.0))
        end_s = config.start_s + window_s if config.end_s is None else config.end_s
        example = embed_example(config.audio, config.start_s, end_s, model(), index.provenance)
    else:
        assert config.window is not None
        example = stored_example(index, *config.window)
    found = nearest(index, example.vector, config.top, config.max_distance)
    config.out.mkdir(parents=True, exist_ok=True)
    write_matches(config.out / MATCHES_FILE, found)
    first = example.spans[0][0]
    title = f"{Path(example.recording).name} @{first:g}s: {len(found)} nearest windows"
    write_montage(
        config.out / MONTAGE_FILE, title, found[: config.montage_cap], config.style, read_span
    )
    group = write_review_group(config.out, config.results, found)
    log.info(
        "search done",
        extra=fields(
            matches=len(found),
            windows=update.windows,
            index_s=round(update.seconds, 2),
            rebuilt=update.rebuilt,
            out=str(config.out),
        ),
    )
    return SearchResult(example, found, update, group)


@dataclass(frozen=True)
class DuplicatesResult:
    duplicates: list[Duplicate]
    index: IndexUpdate
    table: Path  # duplicates.csv
    exclude: Path  # the copies, as spans discovery can leave out


def duplicates(
    results: Path,
    out: Path | None = None,
    params: DuplicateParams | None = None,
    index_settings: IndexSettings | None = None,
) -> DuplicatesResult:
    """Find recordings and stretches stored twice under ``results`` and write the
    evidence into ``out`` (default ``results``); nothing is deleted."""
    index, update = open_index(results, index_settings)
    found = find_duplicates(index, params or DuplicateParams())
    out = out or results
    table, exclude = out / DUPLICATES_FILE, out / EXCLUDE_FILE
    write_duplicates(table, found)
    write_exclusions(exclude, exclusions(found))
    return DuplicatesResult(found, update, table, exclude)
