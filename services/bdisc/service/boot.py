"""What every service does before its loop: settings (fail fast), logs, signals, metrics."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from bdisc import tracing
from bdisc.adapters.s3_store import S3Store
from bdisc.errors import ConfigError
from bdisc.logs import configure
from bdisc.service.consumer import install_stop_signals
from bdisc.service.metrics import Metrics
from bdisc.service.settings import ServiceSettings, load

S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class Booted(Generic[S]):
    settings: S
    stop: threading.Event
    metrics: Metrics

    def object_store(self) -> S3Store:
        return s3_store(self.settings)


def s3_store(s: ServiceSettings) -> S3Store:
    """The object store a service's settings name."""
    return S3Store(
        s.s3_endpoint,
        s.s3_access_key,
        s.s3_secret_key.get_secret_value(),
        s.s3_bucket,
        s.s3_secure,
        public_endpoint=s.s3_public_endpoint,
        provisioned=s.s3_provisioned,
    )


def boot(name: str, settings_cls: type[S]) -> Booted[S] | None:
    """None (after saying why on stderr) when the configuration is unusable: exit 2."""
    try:
        settings = load(settings_cls)
        configure(settings.log_level, settings.log_format)
        tracing.setup(name, settings.otlp_endpoint)
        metrics = Metrics.create(settings.metrics_port)
    except ConfigError as exc:
        sys.stderr.write(f"{name}: {exc.message}\n")
        return None
    return Booted(settings, install_stop_signals(), metrics)
