"""The exported custom classifier in the official ``birdnet`` package (1.3.1, LiteRT):
``load_custom`` loads CustomClassifier.tflite with its labels, and its scores of real
audio equal bdisc's head applied to bdisc's own embeddings of the same windows. Also our
own runtime on the file, in process. ``birdnet`` lives in a venv of its own (its pins
are not ours), built once like the perch-hoplite one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bdisc.errors import ConfigError
from bdisc.model.birdnet import EMBEDDING_DIM, MODEL_FILE, BirdNetV24, _runtime, default_model_dir
from bdisc.training import tflite_export
from bdisc.training.api import TrainConfig, train
from bdisc.training.fit import FitConfig
from bdisc.training.head import Dense, Head
from bdisc.training.model_file import load_model
from bdisc.training.tflite_export import (
    LABELS_FILE,
    TFLITE_FILE,
    classifier_tflite,
    run_classifier,
)

BIRDNET = "birdnet==1.3.1"
WINDOW = 144_000  # 3 s at 48 kHz
TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def birdnet_python() -> Path:
    """birdnet 1.3.1 in a venv of its own; built once."""
    venv = Path(__file__).parents[2] / ".venv-birdnet"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", BIRDNET], check=True, timeout=900
        )
    return python


@pytest.fixture(scope="module", params=["linear", "mlp"])
def classifier(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> Path:
    """A head trained on real clips (Screaming Piha, Long-billed Hermit, noise)."""
    root = tmp_path_factory.mktemp("clips")
    picks = {
        "Screaming Piha": ["piha_site/ScreamingPiha1.mp3", "piha_site/ScreamingPiha4.mp3"],
        "Long-billed Hermit": ["hermit_site/lbh1.wav", "hermit_site/lbh2.wav"],
        "Noise": ["noise/street.flac", "noise/pst_cafe.flac"],
    }
    for label, files in picks.items():
        (root / label).mkdir()
        for rel in files:
            shutil.copy(data_dir / "discovery" / rel, root / label)
    out = root / "model"
    fit = FitConfig(head=request.param, hidden=16, epochs=30)
    train(TrainConfig(root, out, fit, val_fraction=0.5))
    return out


SCORE_WITH_BIRDNET = """
import json, sys
import numpy as np
import birdnet

def main():
    model, labels, audio = sys.argv[1:4]
    info = birdnet.inspect_custom_tflite(model, library="litert")
    loaded = birdnet.load_custom("acoustic", "2.4", "tf", model, labels, library="litert")
    out = {"info": {k: getattr(info, k) for k in
                    ("version", "mode", "n_species", "applies_sigmoid", "supports_encoding")}}
    for sigmoid in (False, True):
        result = loaded.predict(
            audio, top_k=None, apply_sigmoid=sigmoid, n_workers=1, batch_size=4,
            default_confidence_threshold=0.0 if sigmoid else -1e9, half_precision=False,
        )
        ids, probs = result.species_ids[0], result.species_probs[0]
        full = np.full((ids.shape[0], len(result.species_list)), np.nan)
        for segment in range(ids.shape[0]):
            full[segment, ids[segment]] = probs[segment]
        out["scores" if sigmoid else "logits"] = full.tolist()
        out["species"] = [str(s) for s in result.species_list]
    print("RESULT " + json.dumps(out), flush=True)

if __name__ == "__main__":  # birdnet's workers start by spawning this module again
    main()
"""


def _windows(path: Path) -> np.ndarray:
    """The recording's 3-s windows (48-kHz mono, a whole number of windows)."""
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 48_000 and audio.ndim == 1 and len(audio) % WINDOW == 0
    return np.asarray(audio, dtype=np.float32).reshape(-1, WINDOW)


@pytest.mark.model
@pytest.mark.slow
def test_birdnet_load_custom_scores_equal_the_head(
    classifier: Path, birdnet_python: Path, audio_dir: Path, model: BirdNetV24, tmp_path: Path
) -> None:
    script = tmp_path / "score.py"
    script.write_text(SCORE_WITH_BIRDNET)
    audio = audio_dir / "soundscape.flac"
    run = subprocess.run(
        [str(birdnet_python), str(script), str(classifier / TFLITE_FILE),
         str(classifier / LABELS_FILE), str(audio)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    seen = json.loads(line.removeprefix("RESULT "))
    trained = load_model(classifier)
    assert seen["info"] == {
        "version": "2.4",
        "mode": "replace",
        "n_species": len(trained.classes),
        "applies_sigmoid": False,  # logits out, as BirdNET-Analyzer's exports
        "supports_encoding": True,  # birdnet finds GLOBAL_AVG_POOL: the embedding
    }
    assert seen["species"] == list(trained.classes)
    embeddings = model.infer(_windows(audio)).embeddings
    expected = trained.head.logits(embeddings)
    logits = np.asarray(seen["logits"])
    assert logits.shape == expected.shape == (40, len(trained.classes))
    assert np.abs(logits - expected).max() < TOLERANCE
    # its sigmoid (clipped at 15, the package's) of the same logits
    scores = 1.0 / (1.0 + np.exp(-np.clip(expected.astype(np.float64), -15, 15)))
    assert np.abs(np.asarray(seen["scores"]) - scores).max() < TOLERANCE
    assert np.ptp(expected) > 1.0  # a head that tells windows apart, not a constant


@pytest.mark.model
def test_our_runtime_runs_the_classifier_as_the_head(
    classifier: Path, audio_dir: Path, model: BirdNetV24
) -> None:
    windows = _windows(audio_dir / "soundscape.flac")[:12]
    head = load_model(classifier).head
    expected = head.logits(model.infer(windows).embeddings)
    got = run_classifier(classifier / TFLITE_FILE, windows, threads=2)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < TOLERANCE


def _random_head(kind: str, hidden: int = 8, classes: int = 3) -> Head:
    rng = np.random.default_rng(0)
    if kind == "linear":
        sizes = [(classes, EMBEDDING_DIM)]
    else:
        sizes = [(hidden, EMBEDDING_DIM), (classes, hidden)]
    layers = tuple(
        Dense(
            rng.normal(0, 0.05, size=s).astype(np.float32),
            rng.normal(size=s[0]).astype(np.float32),
        )
        for s in sizes
    )
    return Head(kind, layers)  # type: ignore[arg-type]


@pytest.mark.model
def test_only_dynamic_tensors_keep_a_dynamic_batch(tmp_path: Path) -> None:
    """The mlp export's new activations take any batch (-1); its new constant weights
    have no shape signature, as the template's constants."""
    path = tmp_path / TFLITE_FILE
    path.write_bytes(classifier_tflite(_random_head("mlp")))
    _, utils = _runtime()
    graph = utils.read_model(str(path)).subgraphs[0]
    by_name = {t.name.decode(): t for t in graph.tensors}
    hidden = by_name["bdisc/HIDDEN_DENSE/Relu"]
    assert list(hidden.shape) == [1, 8] and list(hidden.shapeSignature) == [-1, 8]
    for name in ("bdisc/CLASS_DENSE/MatMul", "bdisc/CLASS_DENSE/BiasAdd"):
        assert by_name[name].shapeSignature is None, name
    assert list(by_name["bdisc/CLASS_DENSE/MatMul"].shape) == [3, 8]
    out = graph.tensors[int(graph.outputs[0])]
    assert list(out.shape) == [1, 3] and list(out.shapeSignature) == [-1, 3]


@pytest.mark.model
def test_a_quantised_last_layer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    interpreter, utils = _runtime()
    read_model = utils.read_model

    def quantised(path: str) -> object:
        model = read_model(path)
        graph = model.subgraphs[0]
        out = int(graph.outputs[0])
        dense = next(op for op in graph.operators if out in list(op.outputs))
        weights = graph.tensors[int(dense.inputs[1])]
        weights.type = 9  # INT8
        weights.quantization.scale = np.asarray([0.01], dtype=np.float32)
        return model

    class Utils:
        schema_fb = utils.schema_fb
        read_model = staticmethod(quantised)

    monkeypatch.setattr(tflite_export, "_runtime", lambda: (interpreter, Utils))
    assert (default_model_dir() / MODEL_FILE).is_file()
    with pytest.raises(ConfigError, match="float32"):
        classifier_tflite(_random_head("linear"))
