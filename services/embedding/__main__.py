"""python -m embedding: consume the embed stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.s3_store import S3Store
from bdisc.app import stages
from bdisc.app.embed_stage import EmbedStage
from bdisc.errors import ConfigError
from bdisc.logs import configure
from bdisc.model.birdnet import BirdNetV24
from bdisc.service.consumer import consume_forever, install_stop_signals
from bdisc.service.metrics import Metrics
from bdisc.service.settings import load
from embedding.grpc_server import serve
from embedding.settings import EmbeddingSettings


def main() -> int:
    try:
        s = load(EmbeddingSettings)
    except ConfigError as exc:
        sys.stderr.write(f"embedding: {exc.message}\n")
        return 2
    configure(s.log_level, s.log_format)
    stop = install_stop_signals()
    try:
        metrics = Metrics.create(s.metrics_port)
    except ConfigError as exc:
        sys.stderr.write(f"{__package__}: {exc.message}\n")
        return 2
    objects = S3Store(
        s.s3_endpoint, s.s3_access_key, s.s3_secret_key.get_secret_value(), s.s3_bucket, s.s3_secure
    )
    model = BirdNetV24(s.model_dir, s.threads)
    server = None
    if s.grpc_port:  # on-demand inference has its own model: interpreters are not shared
        server, _ = serve(BirdNetV24(s.model_dir, 1), s.grpc_port, s.grpc_host)
    stage = EmbedStage(model, objects, RabbitBus(s.rabbitmq_url), s.scratch_dir, s.batch_size)

    def make_bus() -> RabbitBus:  # the handler publishes on the bus that consumes
        stage.bus = RabbitBus(s.rabbitmq_url)
        return stage.bus

    consume_forever(stages.EMBED, make_bus, stage.handle, metrics, stop)
    if server is not None:
        server.stop(grace=10).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
