"""The whole life of a queue-worker service: boot, consume one stage, stop on SIGTERM."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from bdisc.app import stages
from bdisc.app.cancel_marks import CancelMarks
from bdisc.app.stage_handler import Routes, stage_handler
from bdisc.errors import ConfigError
from bdisc.ports.message_bus import Handler, MessageBus
from bdisc.service.boot import Booted, boot
from bdisc.service.bus import rabbit_bus
from bdisc.service.consumer import consume_forever, watch_queue
from bdisc.service.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


class Stage(Protocol):
    @property
    def routes(self) -> Routes: ...


def run_stage_worker(
    name: str,
    stage_name: str,
    settings_cls: type[S],
    build: Callable[[Booted[S]], Stage],
) -> int:
    booted = boot(name, settings_cls)
    if booted is None:
        return 2
    prefetch = stages.PREFETCH.get(stage_name, 1)
    try:
        rabbit_bus(booted.settings, name)  # a misconfigured bus user stops it here
    except ConfigError as exc:
        sys.stderr.write(f"{name}: {exc.message}\n")
        return 2
    stage = build(booted)
    marks = CancelMarks(booted.object_store())

    def make_handler(bus: MessageBus) -> Handler:  # events go out on the consuming bus
        return stage_handler(bus, stage.routes, marks)

    watch_queue(stage_name, lambda: rabbit_bus(booted.settings, name), booted.metrics, booted.stop)
    consume_forever(
        stage_name,
        lambda: rabbit_bus(booted.settings, name, prefetch=prefetch),
        make_handler,
        booted.metrics,
        booted.stop,
    )
    return 0
