"""gRPC Inference: a live stream gets the scores the CLI gets; health checks serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile as sf
import soxr
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bdisc.errors import Retryable
from bdisc.model.birdnet import BirdNetV24
from bdisc.params import AnalysisParams
from bdisc.pipeline.scoring import Scorer
from bdisc.v1 import inference_pb2, inference_pb2_grpc
from embedding.grpc_server import SharedModel, serve

from .helpers import run_windows


@pytest.fixture(scope="module")
def channel(model: BirdNetV24) -> Iterator[grpc.Channel]:
    server, port = serve(model, 0)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    server.stop(grace=1)


def stream(
    pcm: bytes, rate: int, encoding: str, channels: int = 1, chunk: int = 7777, **options: object
) -> Iterator[inference_pb2.AudioChunk]:
    opts = inference_pb2.AnalysisOptions(**options)  # type: ignore[arg-type]
    for i in range(0, len(pcm), chunk):  # chunks split samples anywhere
        yield inference_pb2.AudioChunk(
            pcm=pcm[i : i + chunk],
            sample_rate=rate,
            channels=channels,
            encoding=encoding,
            options=opts if i == 0 else None,
        )


@pytest.mark.model
def test_stream_scores_equal_the_file_path(
    channel: grpc.Channel, model: BirdNetV24, audio_dir: Path, tmp_path: Path
) -> None:
    audio, rate = sf.read(audio_dir / "soundscape.flac", frames=48_000 * 15, dtype="float32")
    stub = inference_pb2_grpc.InferenceStub(channel)
    results = list(
        stub.Analyze(
            stream(audio.astype("<f4").tobytes(), rate, "f32le", include_embedding=True, top_k=3)
        )
    )
    assert [(r.start_s, r.end_s) for r in results] == [(s, s + 3.0) for s in range(0, 15, 3)]
    path = tmp_path / "clip.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    scorer = Scorer(AnalysisParams(top_k=3), model.labels)
    windows = run_windows(model, path, AnalysisParams())
    for got, (start, _, logits, emb) in zip(results, windows, strict=True):
        assert got.start_s == start
        idx, top = scorer.top_k(scorer.scores(logits[None, :]))
        assert [t.label for t in got.top] == [model.labels[i].key for i in idx[0]]
        np.testing.assert_allclose([t.score for t in got.top], top[0], atol=1e-6)
        np.testing.assert_allclose(got.embedding, emb, atol=1e-6)
    assert results[0].top[0].common_name == "Black-capped Chickadee"
    assert results[0].model.startswith("BirdNET_GLOBAL_6K_V2.4")


@pytest.mark.model
def test_stereo_int16_at_another_rate(channel: grpc.Channel, audio_dir: Path) -> None:
    audio, rate = sf.read(audio_dir / "soundscape.flac", frames=48_000 * 6, dtype="float32")
    low = soxr.resample(audio, rate, 22_050)
    stereo = np.stack([low, low], axis=1)
    pcm = (np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes()
    stub = inference_pb2_grpc.InferenceStub(channel)
    results = list(stub.Analyze(stream(pcm, 22_050, "s16le", channels=2, min_conf=0.1)))
    assert len(results) == 2 and results[0].top[0].common_name == "Black-capped Chickadee"
    assert all(t.score >= 0.1 for r in results for t in r.top)


@pytest.mark.model
def test_bad_streams_get_status_codes_and_health_serves(channel: grpc.Channel) -> None:
    stub = inference_pb2_grpc.InferenceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Analyze(stream(b"\x00" * 1000, 12, "s16le")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Analyze(stream(b"\x00" * 1000, 48_000, "mp3")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(stub.Analyze(iter([]))) == []
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "bdisc.v1.Inference"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_a_busy_interpreter_answers_unavailable_instead_of_waiting_forever(
    model: BirdNetV24,
) -> None:
    """Each batch takes the shared interpreter in turn, waiting a bounded time for it."""
    shared = SharedModel(model, wait_s=0.2)
    batch = np.zeros((1, 144_000), dtype=np.float32)
    shared._lock.acquire()  # another stream's batch holds it
    try:
        with pytest.raises(Retryable, match="inference busy"):
            shared.infer(batch)
    finally:
        shared._lock.release()
    assert shared.infer(batch).logits.shape[0] == 1
