"""Decoding: every format, rate and channel count; bad files get clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bdisc.audio.reader import probe, stream_mono
from bdisc.errors import CorruptAudio, EmptyAudio, NotFound, UnsupportedFormat


def decode(path: Path, rate: int = 48_000, block_seconds: float = 10.0) -> np.ndarray:
    info = probe(path)
    return np.concatenate(list(stream_mono(info, rate, block_seconds=block_seconds)))


@pytest.mark.parametrize("name", ["soundscape.flac", "soundscape.ogg", "soundscape.mp3"])
def test_formats_decode_to_the_same_signal(audio_dir: Path, name: str) -> None:
    reference = decode(audio_dir / "soundscape.flac")
    signal = decode(audio_dir / name)
    assert abs(signal.size - reference.size) < 48_000 * 0.1  # MP3 adds codec delay
    n = min(signal.size, reference.size, 48_000 * 10)
    if name.endswith("flac"):
        np.testing.assert_array_equal(signal, reference)
    else:  # lossy copies: strongly correlated with the original at the codec's delay
        a, b = reference[:n], signal[: n + 4096]
        xc = np.fft.irfft(np.fft.rfft(b, 2 * b.size) * np.conj(np.fft.rfft(a, 2 * b.size)))
        lag = int(np.argmax(xc[:4096]))
        corr = np.corrcoef(a, signal[lag : lag + n])[0, 1]
        assert corr > 0.9, (lag, corr)


def test_upper_case_extension(audio_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "REC.FLAC"
    path.write_bytes((audio_dir / "soundscape.flac").read_bytes())
    assert probe(path).duration_s == pytest.approx(120.0)


def test_block_size_does_not_change_the_signal(audio_dir: Path) -> None:
    """Streaming resampling is seamless: blocks of 0.7 s give what blocks of 10 s give."""
    path = audio_dir / "ANPA-103486_first2s.wav"  # 256 kHz, resampled to 48 kHz
    a = decode(path, block_seconds=0.7)
    b = decode(path, block_seconds=10.0)
    assert a.size == b.size == 2 * 48_000
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("rate", [8_000, 22_050, 96_000, 384_000])
def test_resampling_keeps_a_tone(tmp_path: Path, rate: int) -> None:
    """A 1 kHz tone at any rate from 8 to 384 kHz comes out as a 1 kHz tone at 48 kHz."""
    t = np.arange(rate * 2) / rate
    path = tmp_path / "tone.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * 1000 * t), rate)
    out = decode(path)
    assert out.size == 96_000
    spectrum = np.abs(np.fft.rfft(out[4800:-4800]))
    peak_hz = np.argmax(spectrum) * 48_000 / (out.size - 9600)
    assert abs(peak_hz - 1000) < 5


@pytest.mark.parametrize("channels", [2, 8])
def test_channels_mix_down_to_the_mean(audio_dir: Path, tmp_path: Path, channels: int) -> None:
    mono, rate = sf.read(audio_dir / "soundscape.flac", frames=48_000 * 5, dtype="float32")
    gains = np.linspace(0.2, 1.0, channels, dtype=np.float32)
    multi = mono[:, None] * gains[None, :]
    path = tmp_path / f"multi{channels}.wav"
    sf.write(path, multi, rate, subtype="FLOAT")
    assert probe(path).channels == channels
    np.testing.assert_allclose(decode(path), mono * gains.mean(), atol=1e-6)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        probe(tmp_path / "nope.wav")


def test_not_audio_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedFormat):
        probe(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(EmptyAudio):
        probe(path)


def test_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 48_000)
    with pytest.raises(EmptyAudio):
        probe(path)


def test_text_disguised_as_audio(tmp_path: Path) -> None:
    path = tmp_path / "fake.flac"
    path.write_text("this is not a flac file\n" * 100)
    with pytest.raises(CorruptAudio):
        probe(path)


def test_garbage_after_header(audio_dir: Path, tmp_path: Path) -> None:
    """A FLAC whose frames are overwritten with noise: decoding fails mid-stream, clearly."""
    raw = bytearray((audio_dir / "soundscape.flac").read_bytes())
    rng = np.random.default_rng(0)
    raw[8192:] = rng.integers(0, 256, len(raw) - 8192, dtype=np.uint8).tobytes()
    path = tmp_path / "garbled.flac"
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptAudio):
        decode(path)
