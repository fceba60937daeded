"""Training a head: binary cross-entropy on independent sigmoids (multi-label), Adam,
mini-batches, optional class balancing, early stopping on the validation loss.

Inputs are standardised (per-dimension mean and spread of the training windows) while
training, and the standardisation is folded into the first layer afterwards, so the
head takes raw embeddings. Everything random comes from one generator seeded with
``seed``: the same data and seed give identical weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bdisc.errors import ConfigError
from bdisc.logs import fields
from bdisc.training.head import HEAD_KINDS, Dense, Head, HeadKind

log = logging.getLogger(__name__)

Balance = Literal["none", "upsample", "class-weights"]
BALANCES: tuple[Balance, ...] = ("none", "upsample", "class-weights")
MAX_POS_WEIGHT = 100.0  # class weights: no class counts more than 100 times its windows
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
MIN_IMPROVEMENT = 1e-6  # a validation loss must drop by this much to count as better


@dataclass(frozen=True)
class FitConfig:
    head: HeadKind = "linear"
    hidden: int = 256  # mlp: units of the hidden layer
    epochs: int = 100  # at most (early stopping usually ends sooner)
    learning_rate: float = 1e-3
    batch_size: int = 32
    balance: Balance = "none"
    patience: int = 10  # epochs without a better validation loss before stopping
    weight_decay: float = 1e-4  # L2 penalty on the weights (not the biases)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.head not in HEAD_KINDS:
            raise ConfigError(f"unknown head {self.head!r}; choose linear or mlp")
        if self.balance not in BALANCES:
            raise ConfigError(f"unknown balancing {self.balance!r}")
        for name in ("hidden", "epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class FitResult:
    head: Head
    best_epoch: int  # the epoch whose weights were kept (1-based)
    epochs_run: int
    train_loss: tuple[float, ...]  # per epoch
    val_loss: tuple[float, ...]  # per epoch; empty without validation


def fit(
    x: np.ndarray,
    y: np.ndarray,
    config: FitConfig,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int | None = None,
) -> FitResult:
    """Train on (x, y); with validation data, keep the epoch of least validation loss
    and stop after ``patience`` epochs without improvement. ``epochs`` overrides the
    configured maximum (a final fit on all data, for as long as validation found best)."""
    if x.shape[0] == 0 or y.shape[0] != x.shape[0]:
        raise ConfigError("no training windows")
    rng = np.random.default_rng(config.seed)
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    std[std < 1e-6] = 1.0
    xs = (np.asarray(x, dtype=np.float64) - mean) / std
    ys = np.asarray(y, dtype=np.float64)
    if config.balance == "upsample":
        rows = upsampled_rows(ys, rng)
        xs, ys = xs[rows], ys[rows]
    pos_weight = class_weights(ys) if config.balance == "class-weights" else np.ones(ys.shape[1])
    xv = None if x_val is None else (np.asarray(x_val, dtype=np.float64) - mean) / std
    yv = None if y_val is None else np.asarray(y_val, dtype=np.float64)

    params = _init(config, xs.shape[1], ys.shape[1], rng)
    adam = _Adam(params, config.learning_rate)
    best = [p.copy() for p in params]
    best_loss, best_epoch, waited = np.inf, 0, 0
    train_losses: list[float] = []
    val_losses: list[float] = []
    n = xs.shape[0]
    max_epochs = epochs if epochs is not None else config.epochs
    for epoch in range(1, max_epochs + 1):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, config.batch_size):
            rows = order[start : start + config.batch_size]
            loss, grads = _loss_and_grads(params, xs[rows], ys[rows], pos_weight)
            for p, g in zip(params[::2], grads[::2], strict=True):  # weights, not biases
                g += config.weight_decay * p
            adam.step(params, grads)
            total += loss * len(rows)
        train_losses.append(total / n)
        if xv is None or yv is None:
            best_epoch = epoch
            continue
        val_loss = bce(_forward(params, xv)[0], yv)
        val_losses.append(val_loss)
        if val_loss < best_loss - MIN_IMPROVEMENT:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best = [p.copy() for p in params]
        else:
            waited += 1
            if waited >= config.patience:
                break
    if xv is not None and best_epoch == 0:
        raise ConfigError(
            "no epoch gave a finite validation loss: lower the learning rate, or check "
            "the embeddings"
        )
    kept = best if xv is not None else params
    head = _fold(config.head, kept, mean, std)
    log.debug(
        "head trained",
        extra=fields(epochs=len(train_losses), best_epoch=best_epoch, val_loss=best_loss),
    )
    return FitResult(head, best_epoch, len(train_losses), tuple(train_losses), tuple(val_losses))


def upsampled_rows(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All rows, plus repeats of the windows of rarer classes drawn at random until every
    class has as many windows as the largest (BirdNET-Analyzer's ``repeat`` upsampling
    at ratio 1). Negatives are not repeated."""
    counts = y.sum(axis=0)
    most = int(counts.max()) if counts.size else 0
    extra = [np.arange(y.shape[0])]
    for c in range(y.shape[1]):
        positives = np.flatnonzero(y[:, c] > 0)
        missing = most - len(positives)
        if len(positives) and missing > 0:
            extra.append(rng.choice(positives, size=missing, replace=True))
    return np.concatenate(extra)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Positive weight per class: its negatives over its positives (at most 100)."""
    positives = y.sum(axis=0)
    negatives = y.shape[0] - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1.0), 1.0)
    return np.asarray(np.clip(weights, 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT), dtype=np.float64)


def bce(logits: np.ndarray, y: np.ndarray, pos_weight: np.ndarray | None = None) -> float:
    """Mean over windows of the summed per-class binary cross-entropy, from logits."""
    weight = 1.0 if pos_weight is None else pos_weight
    per = weight * y * np.logaddexp(0.0, -logits) + (1.0 - y) * np.logaddexp(0.0, logits)
    return float(per.sum(axis=1).mean())


def _init(config: FitConfig, dim: int, classes: int, rng: np.random.Generator) -> list[np.ndarray]:
    def glorot(fan_out: int, fan_in: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_out, fan_in))

    if config.head == "linear":
        return [glorot(classes, dim), np.zeros(classes)]
    hidden = rng.normal(0.0, np.sqrt(2.0 / dim), size=(config.hidden, dim))  # He
    return [hidden, np.zeros(config.hidden), glorot(classes, config.hidden), np.zeros(classes)]


def _forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(logits, the activations the backward pass needs)."""
    if len(params) == 2:
        return x @ params[0].T + params[1], [x]
    pre = x @ params[0].T + params[1]
    hidden = np.maximum(pre, 0.0)
    return hidden @ params[2].T + params[3], [x, pre, hidden]


def _loss_and_grads(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray, pos_weight: np.ndarray
) -> tuple[float, list[np.ndarray]]:
    logits, acts = _forward(params, x)
    loss = bce(logits, y, pos_weight)
    p = 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))
    dz = (pos_weight * y * (p - 1.0) + (1.0 - y) * p) / x.shape[0]
    if len(params) == 2:
        return loss, [dz.T @ acts[0], dz.sum(axis=0)]
    _, pre, hidden = acts
    dh = (dz @ params[2]) * (pre > 0)
    return loss, [dh.T @ x, dh.sum(axis=0), dz.T @ hidden, dz.sum(axis=0)]


class _Adam:
    def __init__(self, params: list[np.ndarray], lr: float) -> None:
        self.lr = lr
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = ADAM_BETAS
        scale = self.lr * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            p -= scale * m / (np.sqrt(v) + ADAM_EPS)


def _fold(kind: HeadKind, params: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> Head:
    """The head on raw embeddings: ``W (x - mean) / std + b = (W / std) x + (b - W mean / std)``."""
    first = params[0] / std
    folded = [first, params[1] - first @ mean, *params[2:]]
    layers = tuple(
        Dense(folded[i].astype(np.float32), folded[i + 1].astype(np.float32))
        for i in range(0, len(folded), 2)
    )
    return Head(kind, layers)
