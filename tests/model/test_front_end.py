"""The spectrogram front-end in numpy (``bdisc.model.front_end``) with the rest of the
network in LiteRT gives what the whole published model gives: logits and embeddings
within 1e-4 on real audio, at any batch size; conformance to BirdNET's reference scores
(test_conformance.py) runs on this path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from bdisc.model.birdnet import SAMPLE_RATE, BirdNetV24

WINDOW = 144_000


def windows(audio_dir: Path) -> np.ndarray:
    """3-s windows of every bundled recording, at 48 kHz, a silent one and a clipped one."""
    out = []
    for path in sorted(audio_dir.glob("*.*")):
        if path.suffix not in (".flac", ".wav", ".mp3"):
            continue
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if rate != SAMPLE_RATE:
            audio = resample_poly(audio, SAMPLE_RATE, rate).astype(np.float32)
        n = min(len(audio) // WINDOW, 12)
        out.append(audio[: n * WINDOW].reshape(n, WINDOW))
    x = np.vstack(out)
    return np.vstack([x, np.zeros((1, WINDOW), np.float32), np.clip(x[:1] * 50, -1, 1)])


@pytest.mark.model
def test_the_split_model_gives_what_the_whole_model_gives(
    model: BirdNetV24, audio_dir: Path
) -> None:
    x = windows(audio_dir)
    assert len(x) >= 20
    whole = BirdNetV24(front_end=False)
    for batch in (1, 7, len(x)):
        for i in range(0, len(x), batch):
            ours, theirs = model.infer(x[i : i + batch]), whole.infer(x[i : i + batch])
            assert np.abs(ours.logits - theirs.logits).max() < 1e-4
            assert np.abs(ours.embeddings - theirs.embeddings).max() < 1e-4
    assert model.info == whole.info  # the same model: its embeddings mix with older ones


@pytest.mark.model
def test_the_bins_left_out_of_the_spectrum_weigh_nothing(model: BirdNetV24) -> None:
    front = model._front
    assert front is not None
    kept = []
    for branch in front.branches:
        bins = branch.bins
        outside = np.ones(branch.mel.shape[0], bool)
        outside[bins] = False
        assert not branch.mel[outside].any()  # only zero rows are skipped
        assert branch.mel[bins.start].any() and branch.mel[bins.stop - 1].any()
        np.testing.assert_array_equal(branch.mel_used, branch.mel[bins])
        kept.append(bins.stop - bins.start)
    assert kept == [127, 309]  # of 1025 and 513: the first branch's FFT is mostly unused
