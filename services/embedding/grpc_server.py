"""gRPC ``bdisc.v1.Inference`` (stream audio in, windows out) and ``grpc.health.v1``.

Translation only: PCM chunks -> ``pcm_blocks`` -> ``infer_blocks`` (the same inference
as the CLI and the queue workers) -> WindowResult messages. Errors map to status codes
through ``bdisc.errors.grpc_code``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

import grpc
import numpy as np

from bdisc.audio.pcm import PcmFormat, pcm_blocks
from bdisc.errors import Retryable
from bdisc.model.labels import Label
from bdisc.model.port import AcousticModel, Inference, ModelInfo
from bdisc.params import AnalysisParams
from bdisc.pipeline.inference import StreamStats, infer_blocks
from bdisc.pipeline.scoring import Scorer
from bdisc.service.grpc_server import start
from bdisc.v1 import inference_pb2, inference_pb2_grpc

SERVICE = "bdisc.v1.Inference"
LOCK_WAIT_S = 60.0  # a batch waits this long at most for the interpreter


def params_from(options: Any) -> AnalysisParams:
    return AnalysisParams(
        overlap_s=options.overlap_s,
        min_len_s=options.min_len_s or 1.0,
        sensitivity=options.sensitivity or 1.0,
        min_conf=options.min_conf,
        top_k=options.top_k or 5,
    )


class SharedModel:
    """One interpreter shared by the server's streams: each batch takes it in turn (a
    stream whose client sends slowly does not hold it between batches), waiting at most
    ``wait_s`` for it (then UNAVAILABLE: the client retries or goes to another replica)."""

    def __init__(self, model: AcousticModel, wait_s: float = LOCK_WAIT_S) -> None:
        self.model, self.wait_s = model, wait_s
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    @property
    def labels(self) -> Sequence[Label]:
        return self.model.labels

    def infer(self, batch: np.ndarray) -> Inference:
        if not self._lock.acquire(timeout=self.wait_s):
            raise Retryable(f"inference busy for {self.wait_s:g} s: try again")
        try:
            return self.model.infer(batch)
        finally:
            self._lock.release()


class InferenceServicer(inference_pb2_grpc.InferenceServicer):  # type: ignore[misc]
    def __init__(self, model: AcousticModel) -> None:
        self.model = SharedModel(model)

    def Analyze(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        # BdiscErrors become status codes in the server's interceptor
        yield from self._analyze(request_iterator)

    def _analyze(self, requests: Iterator[Any]) -> Iterator[Any]:
        first = next(requests, None)
        if first is None:
            return
        fmt = PcmFormat(first.sample_rate, first.channels or 1, first.encoding or "s16le")
        params = params_from(first.options)
        include = first.options.include_embedding
        scorer = Scorer(params, self.model.labels)
        labels = self.model.labels
        provenance = f"{self.model.info.name} {self.model.info.precision}"
        chunks = chain([first.pcm], (r.pcm for r in requests))
        blocks = pcm_blocks(chunks, fmt, self.model.info.sample_rate)
        for batch in infer_blocks(blocks, self.model, params, 1, StreamStats()):
            idx, top = scorer.top_k(scorer.scores(batch.logits))
            for i in range(len(batch)):
                yield inference_pb2.WindowResult(
                    start_s=float(batch.start_s[i]),
                    end_s=float(batch.end_s[i]),
                    top=[
                        inference_pb2.SpeciesScore(
                            label=labels[j].key,
                            scientific_name=labels[j].scientific,
                            common_name=labels[j].common,
                            score=float(s),
                        )
                        for j, s in zip(idx[i], top[i], strict=True)
                        if s >= params.min_conf
                    ],
                    embedding=batch.embeddings[i].tolist() if include else [],
                    model=provenance,
                )


def serve(
    model: AcousticModel,
    port: int,
    host: str = "127.0.0.1",
    max_workers: int = 4,
    token: str | None = None,
) -> tuple[grpc.Server, int]:
    """Start the server; returns it and the port it listens on (port 0: any free port)."""
    return start(
        lambda server: inference_pb2_grpc.add_InferenceServicer_to_server(  # type: ignore[no-untyped-call]
            InferenceServicer(model), server
        ),
        [SERVICE],
        port,
        host,
        max_workers,
        token,
    )
