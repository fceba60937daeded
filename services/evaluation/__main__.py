"""python -m evaluation: consume the evaluate stage (wiring only)."""

from __future__ import annotations

import sys

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app import stages
from bdisc.app.evaluate_stage import EvaluateStage
from bdisc.service.boot import boot
from bdisc.service.consumer import consume_forever
from bdisc.service.settings import ServiceSettings


def main() -> int:
    booted = boot("evaluation", ServiceSettings)
    if booted is None:
        return 2
    s = booted.settings
    stage = EvaluateStage(booted.object_store(), RabbitBus(s.rabbitmq_url), s.scratch_dir)

    def make_bus() -> RabbitBus:  # the handler publishes on the bus that consumes
        stage.bus = RabbitBus(s.rabbitmq_url)
        return stage.bus

    consume_forever(stages.EVALUATE, make_bus, stage.handle, booted.metrics, booted.stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
