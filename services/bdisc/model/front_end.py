"""BirdNET V2.4's spectrogram front-end in numpy, from the model's own constants.

The model's first 93 operators (scaling, framing, Hann window, two RFFT2D, mel matrices,
a power law) turn a 3-s window into two 96-band mel spectrograms, ``model/concatenate/
concat`` (B x 96 x 511 x 2), before the first convolution. LiteRT's fast CPU backend
(XNNPACK) does not take those operators: they cost about 60 % of the model's time there.
Computed here instead, and the rest of the network run by LiteRT from that tensor
(``birdnet.py`` cuts the flatbuffer there), a window runs about 1.5 times as fast
(``bench/runtime_split.py``: x1.52), and logits stay within 5e-5 and embeddings within
1e-5 of the whole model's on real audio (measured 4e-5 and 6e-6;
``tests/model/test_front_end.py`` holds them to the conformance limit, 1e-4).

It matches only because it rounds as TFLite does: the window product in float32, the
FFT in float64 (as TFLite's RFFT2D), the real part kept (the model's cast). The power
law (exponent about 0.2) magnifies any other rounding in near-zero mel bins: a float64
product moves logits by 4e-2, a float32 FFT the spectrogram by 3e-3.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from bdisc.errors import ConfigError

CUT_TENSOR = "model/concatenate/concat"  # the spectrograms, the network's real input
MEL_BANDS = 96
BRANCHES = ("MEL_SPEC1", "MEL_SPEC2")


@dataclass(frozen=True)
class MelBranch:
    length: int  # frame length (samples)
    step: int  # hop (samples)
    window: np.ndarray  # (length,) float32 Hann window
    mel: np.ndarray  # (length // 2 + 1, 96) float32, mel axis as the model orders it
    power: np.float32

    @functools.cached_property
    def bins(self) -> slice:
        """The FFT bins the mel matrix weighs (the others are multiplied by zero)."""
        used = np.flatnonzero(self.mel.any(axis=1))
        return slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 1)

    @functools.cached_property
    def mel_used(self) -> np.ndarray:
        return np.ascontiguousarray(self.mel[self.bins])


class Constants:
    """The named constant tensors of a TFLite model (``flatbuffer_utils.read_model``)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        graph = model.subgraphs[0]
        self.index = {_name(t): i for i, t in enumerate(graph.tensors)}

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.index:
            raise ConfigError(f"the model has no tensor {name!r}: not BirdNET V2.4's layout")
        tensor = self.model.subgraphs[0].tensors[self.index[name]]
        data = self.model.buffers[tensor.buffer].data
        if data is None:
            raise ConfigError(f"tensor {name!r} of the model is not a constant")
        dtype = {0: np.float32, 2: np.int32}[int(tensor.type)]
        shape = [int(d) for d in tensor.shape] if tensor.shape is not None else []
        return np.frombuffer(bytes(np.asarray(data, dtype=np.uint8)), dtype=dtype).reshape(shape)


# threadpoolctl is imported with this module, not on the first window: the embed workers
# fork from a server that preloads the model's modules.


@functools.cache
def _blas() -> Any:
    """The process's BLAS libraries, found once (a search per call costs milliseconds)."""
    return ThreadpoolController()


def _name(tensor: Any) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


class FrontEnd:
    """(B, samples) float32 windows -> (B, 96, frames, 2) mel spectrograms."""

    def __init__(self, constants: Constants, samples: int) -> None:
        def scalar(name: str) -> np.float32:
            return np.float32(constants(name).reshape(()))

        self.eps = scalar("model/MEL_SPEC1/add/y")
        self.shift = scalar("model/MEL_SPEC1/Sub_1/y")
        self.scale = scalar("model/MEL_SPEC1/Mul/y")
        self.branches = [
            MelBranch(
                length=int(constants(f"model/{b}/stft/frame_length").reshape(())),
                step=int(constants(f"model/{b}/stft/frame_step").reshape(())),
                window=constants(f"model/{b}/stft/hann_window/sub_2").astype(np.float32),
                mel=np.ascontiguousarray(
                    constants(f"model/{b}/Tensordot/MatMul").T[:, ::-1], dtype=np.float32
                ),
                power=scalar(f"model/{b}/truediv_1"),
            )
            for b in BRANCHES
        ]
        frames = {1 + (samples - b.length) // b.step for b in self.branches}
        if len(frames) != 1:
            raise ConfigError(f"the model's two spectrograms have {sorted(frames)} frames")
        self.frames = frames.pop()

    @property
    def shape(self) -> list[int]:
        """A window's spectrograms: bands, frames, branches."""
        return [MEL_BANDS, self.frames, len(self.branches)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Workers are processes, one per core: BLAS threads of their own would only fight
        # over the cores (2 workers on 2 cores ran at half speed with OpenBLAS's 2 each).
        with _blas().limit(limits=1, user_api="blas"):
            return self._spectrograms(x)

    def _spectrograms(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        s = x - x.min(axis=1, keepdims=True)
        s = s / (s.max(axis=1, keepdims=True) + self.eps)
        s = (s - self.shift) * self.scale
        spec = np.empty((x.shape[0], MEL_BANDS, self.frames, len(self.branches)), np.float32)
        for j, b in enumerate(self.branches):
            view = np.lib.stride_tricks.sliding_window_view(s, b.length, axis=1)
            frames = view[:, :: b.step][:, : self.frames]
            wide = np.empty((self.frames, b.length), np.float64)
            spectrum = np.empty((self.frames, b.length // 2 + 1), np.complex128)
            real = np.empty((self.frames, b.bins.stop - b.bins.start), np.float32)
            mel = np.empty((self.frames, MEL_BANDS), np.float32)
            for i in range(x.shape[0]):  # window by window: the buffers stay in cache
                # the product rounded to float32 (as TFLite), written widened in one pass
                np.multiply(frames[i], b.window, out=wide, dtype=np.float32)
                np.fft.rfft(wide, axis=-1, out=spectrum)  # pocketfft, as scipy's, bit for bit
                # only the bins the mel matrix weighs (the first branch: 127 of 1025)
                np.copyto(real, spectrum[:, b.bins].real, "same_kind")
                np.matmul(real, b.mel_used, out=mel)
                np.multiply(mel, mel, out=mel)
                np.power(mel, b.power, out=mel)
                spec[i, :, :, j] = mel.T
        return spec
