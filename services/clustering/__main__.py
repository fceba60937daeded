"""python -m clustering: consume the cluster stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.adapters.s3_store import S3Store
from bdisc.app import stages
from bdisc.app.cluster_stage import ClusterStage
from bdisc.errors import ConfigError
from bdisc.logs import configure
from bdisc.service.consumer import consume_forever, install_stop_signals
from bdisc.service.metrics import Metrics
from bdisc.service.settings import ServiceSettings, load


def main() -> int:
    try:
        s = load(ServiceSettings)
    except ConfigError as exc:
        sys.stderr.write(f"clustering: {exc.message}\n")
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
    stage = ClusterStage(objects, RabbitBus(s.rabbitmq_url), s.scratch_dir)

    def make_bus() -> RabbitBus:
        stage.bus = RabbitBus(s.rabbitmq_url)
        return stage.bus

    consume_forever(stages.CLUSTER, make_bus, stage.handle, metrics, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
