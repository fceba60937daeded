"""Which files are audio, and how to find them in the paths a user gives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath

# Formats libsndfile decodes for us (MP3 needs libsndfile >= 1.1, bundled in soundfile wheels).
AUDIO_EXTENSIONS: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".mp3"})


def is_audio_path(path: PurePath) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def iter_inputs(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield (root, file) for every recording under the given paths, sorted per root.

    A directory contributes every audio file below it (hidden files and folders skipped);
    a file given by name is yielded whatever its extension, so that a wrong file named
    on the command line gets a clear per-file error instead of being ignored.
    """
    for path in paths:
        if path.is_dir():
            found = (
                p
                for p in path.rglob("*")
                if p.is_file()
                and is_audio_path(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            for file in sorted(found):
                yield path, file
        else:
            yield path.parent, path
