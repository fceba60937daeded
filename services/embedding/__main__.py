"""python -m embedding: consume the embed stage and serve bdisc.v1.Inference (wiring only)."""

from __future__ import annotations

import sys

from bdisc.app import stages
from bdisc.app.embed_stage import EmbedStage
from bdisc.model.birdnet import BirdNetV24
from bdisc.service.boot import Booted
from bdisc.service.stage_worker import run_stage_worker
from embedding.grpc_server import serve
from embedding.settings import EmbeddingSettings


def build(booted: Booted[EmbeddingSettings]) -> EmbedStage:
    s = booted.settings
    if s.grpc_port:  # on-demand inference has its own model: interpreters are not shared
        token = s.grpc_token.get_secret_value() if s.grpc_token else None
        serve(BirdNetV24(s.model_dir, 1), s.grpc_port, s.grpc_host, token=token)  # stops with it
    return EmbedStage(
        BirdNetV24(s.model_dir, s.threads),
        booted.object_store(),
        s.scratch_dir,
        s.batch_size,
        on_windows=booted.metrics.windows.inc,
    )


if __name__ == "__main__":
    sys.exit(run_stage_worker("embedding", stages.EMBED, EmbeddingSettings, build))
