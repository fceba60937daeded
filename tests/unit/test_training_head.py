"""The head's math (forward, gradients, Adam training, standardisation folded into the
weights), its file, and the training set's rules (negatives, hash)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bdisc.errors import ConfigError
from bdisc.training import fit as fit_module
from bdisc.training.api import _warn_uncovered
from bdisc.training.dataset import assemble, is_negative
from bdisc.training.fit import FitConfig, bce, class_weights, fit, upsampled_rows
from bdisc.training.head import Dense, Head, sigmoid
from bdisc.training.metrics import evaluate


def _blobs(
    seed: int = 0, n: int = 60, dim: int = 16, draw: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Three separable classes plus negatives, offset from zero like BirdNET's embeddings:
    the classes' centres from ``seed``, the windows around them from ``draw`` (default:
    the same generator)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(4, dim)) + 5.0
    if draw is not None:
        rng = np.random.default_rng(draw)
    which = np.arange(n) % 4
    x = (centres[which] + rng.normal(0, 1, size=(n, dim))).astype(np.float32)
    y = np.zeros((n, 3), dtype=np.float32)
    y[which < 3, which[which < 3]] = 1.0  # class 3 is the negatives
    return x, y


def test_linear_and_mlp_forward() -> None:
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    w2, b2 = rng.normal(size=(2, 5)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    linear = Head("linear", (Dense(w1, b1),))
    np.testing.assert_allclose(linear.logits(x), x @ w1.T + b1, rtol=1e-6)
    mlp = Head("mlp", (Dense(w1, b1), Dense(w2, b2)))
    np.testing.assert_allclose(mlp.logits(x), np.maximum(x @ w1.T + b1, 0) @ w2.T + b2, rtol=1e-5)
    assert mlp.hidden == 5 and mlp.n_classes == 2 and mlp.input_dim == 4
    with pytest.raises(ConfigError):
        linear.logits(np.zeros((2, 3), dtype=np.float32))


def test_sigmoid_is_stable_at_the_extremes() -> None:
    s = sigmoid(np.array([-1000.0, -20.0, 0.0, 20.0, 1000.0]))
    assert np.isfinite(s).all() and s[2] == 0.5 and s[0] == 0.0 and s[-1] == 1.0


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_gradients_match_finite_differences(kind: str) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 5)), (rng.random((7, 3)) > 0.5).astype(np.float64)
    pos_weight = np.array([1.0, 2.5, 0.5])
    config = FitConfig(head=kind, hidden=4)  # type: ignore[arg-type]
    params = fit_module._init(config, 5, 3, rng)
    params = [p + rng.normal(0, 0.1, size=p.shape) for p in params]  # biases non-zero
    _, grads = fit_module._loss_and_grads(params, x, y, pos_weight)
    eps = 1e-6
    for p, g in zip(params, grads, strict=True):
        for index in [tuple(rng.integers(0, s) for s in p.shape) for _ in range(6)]:
            saved = p[index]
            p[index] = saved + eps
            up = bce(fit_module._forward(params, x)[0], y, pos_weight)
            p[index] = saved - eps
            down = bce(fit_module._forward(params, x)[0], y, pos_weight)
            p[index] = saved
            assert g[index] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_fit_learns_and_the_head_takes_raw_embeddings(kind: str) -> None:
    x, y = _blobs()
    xv, yv = _blobs(seed=0, n=40, draw=99)  # the same classes, other windows
    assert not np.isin(xv, x).any()
    config = FitConfig(head=kind, hidden=8, epochs=200, learning_rate=1e-2, seed=3)  # type: ignore[arg-type]
    result = fit(x, y, config, xv, yv)
    assert result.best_epoch <= result.epochs_run <= 200
    assert result.val_loss[result.best_epoch - 1] == min(result.val_loss)
    report = evaluate(result.head.scores(xv), yv, ["a", "b", "c"], ["a", "b", "c", "Noise"] * 10)
    assert all(c.average_precision is not None for c in report.classes)
    assert all(c.average_precision >= 0.95 for c in report.classes), report.classes  # type: ignore[operator]
    # the loss of the folded head on raw inputs is the validation loss kept
    assert bce(result.head.logits(xv).astype(np.float64), yv) == pytest.approx(
        min(result.val_loss), rel=1e-4
    )


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    x, y = _blobs()
    config = FitConfig(head="mlp", hidden=8, epochs=5, seed=7)
    a, b = fit(x, y, config), fit(x, y, config)
    c = fit(x, y, FitConfig(head="mlp", hidden=8, epochs=5, seed=8))
    for la, lb in zip(a.head.layers, b.head.layers, strict=True):
        assert np.array_equal(la.weights, lb.weights) and np.array_equal(la.bias, lb.bias)
    assert not np.array_equal(a.head.layers[0].weights, c.head.layers[0].weights)


def test_early_stopping_stops_after_patience() -> None:
    x, y = _blobs()
    rng = np.random.default_rng(0)
    noise_y = (rng.random(y.shape) > 0.5).astype(np.float32)  # nothing to learn
    result = fit(x, y, FitConfig(epochs=500, patience=3, learning_rate=0.05), x, noise_y)
    assert result.epochs_run == result.best_epoch + 3 < 500


def test_balancing() -> None:
    y = np.zeros((10, 2))
    y[:6, 0] = 1
    y[6:8, 1] = 1  # two negatives
    rows = upsampled_rows(y, np.random.default_rng(0))
    assert y[rows].sum(axis=0).tolist() == [6, 6] and len(rows) == 14
    assert class_weights(y).tolist() == pytest.approx([4 / 6, 8 / 2])


def test_head_file_round_trip(tmp_path: Path) -> None:
    x, y = _blobs()
    head = fit(x, y, FitConfig(head="mlp", hidden=8, epochs=2)).head
    head.save(tmp_path / "head.npz")
    again = Head.load(tmp_path / "head.npz")
    assert again.kind == "mlp"
    np.testing.assert_array_equal(again.logits(x), head.logits(x))


def test_negatives_are_not_classes_and_the_hash_ignores_order() -> None:
    assert all(is_negative(n) for n in ("Noise", "noise ", "OTHER", "Background", "silence"))
    assert not is_negative("Noisy Miner")
    emb = np.arange(12, dtype=np.float32).reshape(4, 3)
    labels = ["Piha", "noise", "Hermit", "Background"]
    recs, starts = ["r2", "r1", "r1", "r3"], [0.0, 3.0, 0.0, 0.0]
    data = assemble(emb, labels, recs, starts, {})
    assert data.classes == ("Hermit", "Piha")
    assert data.recordings.tolist() == ["r1", "r1", "r2", "r3"]  # stable order
    assert data.targets.tolist() == [[1, 0], [0, 0], [0, 1], [0, 0]]
    assert data.counts() == {"Hermit": 1, "Noise": 2, "Piha": 1}
    order = [3, 1, 0, 2]
    again = assemble(
        emb[order],
        [labels[i] for i in order],
        [recs[i] for i in order],
        [starts[i] for i in order],
        {},
    )
    assert again.digest() == data.digest()
    assert np.array_equal(again.embeddings, data.embeddings)
    relabelled = assemble(emb, ["Piha", "noise", "Piha", "Background"], recs, starts, {})
    assert relabelled.digest() != data.digest()
    with pytest.raises(ConfigError):
        assemble(emb, ["Noise", "other", "noise", "Background"], recs, starts, {})


def test_report_confusion_counts_noise() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.2], [0.6, 0.85]], dtype=np.float32)
    targets = np.array([[1, 0], [0, 1], [0, 0], [1, 0]], dtype=np.float32)
    report = evaluate(scores, targets, ["a", "b"], ["a", "b", "Noise", "a"])
    assert report.confusion_labels == ("a", "b", "Noise")
    assert report.confusion == ((1, 1, 0), (0, 1, 0), (0, 0, 1))
    a = report.classes[0]
    assert (a.positives, a.precision, a.recall, a.average_precision) == (2, 1.0, 1.0, 1.0)
    b = report.classes[1]  # its positive (0.8) ranks below a negative (0.85)
    assert (b.precision, b.recall, b.average_precision) == (0.5, 1.0, 0.5)
    assert b.roc_auc == pytest.approx(2 / 3) and b.best_f1 == pytest.approx(2 / 3)


def test_metrics_need_positives_and_negatives() -> None:
    """A class whose validation windows are all positives has no ranking to measure:
    its AP and best F1 are None, not a perfect 1.0 that would lift the macro mean."""
    scores = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6]], dtype=np.float32)
    targets = np.array([[1, 0], [1, 1], [1, 0]], dtype=np.float32)  # a: no negatives
    report = evaluate(scores, targets, ["a", "b"], ["a", "a", "a"])
    a, b = report.classes
    assert (a.average_precision, a.roc_auc, a.best_f1, a.best_threshold) == (None,) * 4
    assert a.recall == pytest.approx(2 / 3)  # threshold metrics still count
    assert b.average_precision == 1.0 and b.best_f1 == 1.0
    assert b.best_threshold == pytest.approx(0.7)
    assert report.summary()["macro_average_precision"] == 1.0  # b's alone
    none = evaluate(scores, np.zeros_like(targets), ["a", "b"], ["Noise"] * 3)
    assert all(c.average_precision is None and c.best_f1 is None for c in none.classes)


def test_metrics_need_no_sklearn() -> None:
    """sklearn is the discovery extra's; training's report is numpy only."""
    code = (
        "import sys, numpy as np\n"
        "from bdisc.training.metrics import evaluate\n"
        "evaluate(np.array([[0.9], [0.1]]), np.array([[1.0], [0.0]]), ['a'], ['a', 'Noise'])\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_uncovered_classes_are_warned_per_split(caplog: pytest.LogCaptureFixture) -> None:
    emb = np.zeros((4, 2), dtype=np.float32)
    data = assemble(emb, ["a", "b", "a", "Noise"], ["r1", "r2", "r3", "r4"], [0, 0, 0, 0], {})
    with caplog.at_level(logging.WARNING):
        _warn_uncovered(data, np.array([0, 1]), np.array([2, 3]), "fold 2 of 3")
    messages = [r.getMessage() for r in caplog.records]
    assert any("b:" in m and "validation positives" in m and "fold 2 of 3" in m for m in messages)
    assert not any(m.startswith("a:") for m in messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _warn_uncovered(data, np.array([1, 3]), np.array([0, 2]), "validation")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("a:") and "training positives" in m for m in messages)
    assert any(m.startswith("a:") and "validation negatives" in m for m in messages)


@pytest.mark.parametrize("label", ["Piha\nHermit", "Piha\tcall", "Piha\x00", "Piha\u2028b"])
def test_labels_with_control_characters_are_refused(label: str) -> None:
    emb = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ConfigError, match="control character") as caught:
        assemble(emb, [label, "Noise"], ["r1", "r2"], [0.0, 0.0], {})
    assert repr(label) in caught.value.message


def test_non_finite_embeddings_are_refused() -> None:
    emb = np.zeros((2, 3), dtype=np.float32)
    emb[1, 2] = np.nan
    with pytest.raises(ConfigError, match="r2 at 3 s"):
        assemble(emb, ["Piha", "Noise"], ["r1", "r2"], [0.0, 3.0], {})


def test_a_window_given_twice_is_kept_once_and_one_label_only() -> None:
    emb = np.arange(9, dtype=np.float32).reshape(3, 3)
    data = assemble(emb, ["Piha", "Piha", "Noise"], ["r1", "r1", "r2"], [3.0, 3.0, 0.0], {})
    assert len(data) == 2 and data.labels == ("Piha", "Noise")
    with pytest.raises(ConfigError, match="labelled both"):
        assemble(emb, ["Piha", "Hermit", "Noise"], ["r1", "r1", "r2"], [3.0, 3.0, 0.0], {})
