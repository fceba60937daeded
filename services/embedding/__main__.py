"""python -m embedding: consume the embed stage and serve bdisc.v1.Inference (wiring only)."""

from __future__ import annotations

import sys

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app import stages
from bdisc.app.embed_stage import EmbedStage
from bdisc.model.birdnet import BirdNetV24
from bdisc.service.boot import boot
from bdisc.service.consumer import consume_forever
from embedding.grpc_server import serve
from embedding.settings import EmbeddingSettings


def main() -> int:
    booted = boot("embedding", EmbeddingSettings)
    if booted is None:
        return 2
    s = booted.settings
    model = BirdNetV24(s.model_dir, s.threads)
    server = None
    if s.grpc_port:  # on-demand inference has its own model: interpreters are not shared
        server, _ = serve(BirdNetV24(s.model_dir, 1), s.grpc_port, s.grpc_host)
    stage = EmbedStage(
        model, booted.object_store(), RabbitBus(s.rabbitmq_url), s.scratch_dir, s.batch_size
    )

    def make_bus() -> RabbitBus:  # the handler publishes on the bus that consumes
        stage.bus = RabbitBus(s.rabbitmq_url)
        return stage.bus

    consume_forever(stages.EMBED, make_bus, stage.handle, booted.metrics, booted.stop)
    if server is not None:
        server.stop(grace=10).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
