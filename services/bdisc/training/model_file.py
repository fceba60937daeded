"""A trained model's folder: ``head.npz`` (the weights) and ``model.json`` (what it is
and where it comes from: the base model and its SHA-256, the classes, the training set's
hash, the embedding settings, the hyper-parameters, the seed, the validation metrics,
and the SHA-256 of head.npz and of the exported CustomClassifier.tflite).

A head only means something on the embeddings of the model it was trained on, so
loading refuses a folder whose base model differs from the installed one, and a head.npz
that is not the one model.json describes (its SHA-256 differs).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bdisc.errors import ConfigError, IncompatibleArtifact, NotFound
from bdisc.fsutil import atomic_write_text
from bdisc.model.birdnet import MODEL_FILE, MODEL_NAME, default_model_dir, file_sha256
from bdisc.training.head import Head
from bdisc.version import __version__

HEAD_FILE = "head.npz"
MODEL_JSON = "model.json"
FORMAT = "bdisc-head/1"


@functools.lru_cache(maxsize=4)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(Path(path))


def base_model(model_dir: Path | None = None) -> dict[str, str]:
    """The installed BirdNET model as model.json records it."""
    path = (model_dir or default_model_dir()) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"BirdNET model file missing: {path}", path=str(path))
    stat = path.stat()
    return {
        "name": MODEL_NAME,
        "version": "2.4",
        "precision": "FP32",
        "file": MODEL_FILE,
        "sha256": _sha256(str(path), stat.st_mtime_ns, stat.st_size),
    }


@dataclass(frozen=True)
class TrainedModel:
    head: Head
    classes: tuple[str, ...]
    meta: dict[str, Any]  # model.json
    folder: Path | None = None

    @property
    def base_sha256(self) -> str:
        return str(self.meta["base_model"]["sha256"])

    def verified_file(self, name: str) -> Path | None:
        """``folder/name`` if it is the file model.json records (same SHA-256), else None:
        a file left from an earlier training is not this model's."""
        recorded = (self.meta.get("files") or {}).get(name)
        path = None if self.folder is None else self.folder / name
        if not recorded or path is None or not path.is_file():
            return None
        return path if file_sha256(path) == recorded else None


def save_model(
    folder: Path,
    head: Head,
    classes: tuple[str, ...],
    meta: dict[str, Any],
    files: Sequence[Path] = (),
) -> None:
    """``meta`` holds everything but the format, the classes, the head's shape and the
    files' hashes (head.npz's, and those of ``files``: the exported classifier's).
    model.json is written last."""
    if head.n_classes != len(classes):
        raise ValueError("the head's outputs and the classes differ in number")
    folder.mkdir(parents=True, exist_ok=True)
    head.save(folder / HEAD_FILE)
    record = {
        "format": FORMAT,
        "bdisc_version": __version__,
        "classes": list(classes),
        "head": {"kind": head.kind, "hidden": head.hidden, "input_dim": head.input_dim},
        **meta,
        "files": {p.name: file_sha256(p) for p in (folder / HEAD_FILE, *files)},
    }
    atomic_write_text(folder / MODEL_JSON, json.dumps(record, indent=2, default=str) + "\n")


def load_model(folder: Path, model_dir: Path | None = None) -> TrainedModel:
    """The model of ``folder``; IncompatibleArtifact if it was trained on another base
    model than the installed one (``model_dir``: the BirdNET folder in use), or if its
    head.npz is not the one model.json records."""
    meta_path, head_path = folder / MODEL_JSON, folder / HEAD_FILE
    for path in (meta_path, head_path):
        if not path.is_file():
            raise NotFound(f"not a trained model folder: {path} is missing", path=str(path))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{meta_path}: not JSON ({exc})", path=str(meta_path)) from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"{meta_path}: not a JSON object", path=str(meta_path))
    if meta.get("format") != FORMAT:
        raise ConfigError(
            f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT}", path=str(meta_path)
        )
    trained_on = meta.get("base_model")
    embedding = meta.get("embedding")
    files = meta.get("files")
    if not (
        isinstance(trained_on, dict) and isinstance(embedding, dict) and isinstance(files, dict)
    ):
        raise ConfigError(
            f"{meta_path}: base_model, embedding and files must be JSON objects",
            path=str(meta_path),
        )
    installed = base_model(model_dir)
    if trained_on.get("sha256") != installed["sha256"]:
        raise IncompatibleArtifact(
            f"{folder} was trained on embeddings of another base model "
            f"({trained_on.get('name')} sha256 {str(trained_on.get('sha256'))[:12]}) than "
            f"the installed one ({installed['name']} sha256 {installed['sha256'][:12]})",
            path=str(folder),
            trained_on=trained_on.get("sha256"),
            installed=installed["sha256"],
        )
    if files.get(HEAD_FILE) != file_sha256(head_path):
        raise IncompatibleArtifact(
            f"{head_path} is not the head {meta_path.name} describes (its SHA-256 differs): "
            "train again, or restore the folder as it was written",
            path=str(head_path),
        )
    head = Head.load(head_path)
    classes = tuple(str(c) for c in meta.get("classes") or [])
    if head.n_classes != len(classes):
        raise ConfigError(
            f"{folder}: the head has {head.n_classes} outputs but model.json "
            f"{len(classes)} classes",
            path=str(folder),
        )
    return TrainedModel(head, classes, meta, folder)
