"""The RabbitMQ bus a service's settings describe: its sender check and topology mode."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from bdisc.adapters.rabbitmq_bus import RabbitBus
from bdisc.app.messages import KINDS
from bdisc.app.senders import SenderCheck
from bdisc.errors import ConfigError
from bdisc.ports.message_bus import Message
from bdisc.service.settings import ServiceSettings

# Alert on it: a message refused is dropped, and its item waits (a forger, or a service
# logged in as the wrong user, or messages queued before the check was switched on).
REFUSED = Counter(
    "bdisc_messages_refused_total",
    "messages dropped because their sender may not send them",
    ["stage", "kind"],
)


def rabbit_bus(settings: ServiceSettings, service: str, **options: Any) -> RabbitBus:
    """A bus for ``service``; with ``bus_senders=checked`` it handles only what its
    senders may send, and refuses to start unless it logs in as the service's own user
    (its messages would be dropped everywhere else)."""
    check = SenderCheck(settings.bus_user_prefix) if settings.bus_senders == "checked" else None

    def accept(stage: str, message: Message) -> bool:
        assert check is not None
        kind = str(message.payload.get("kind", ""))
        if check.accepts(stage, message.stage, kind, message.sender):
            return True
        REFUSED.labels(stage, kind if kind in KINDS else "other").inc()
        return False

    bus = RabbitBus(
        settings.rabbitmq_url,
        accept=accept if check else None,
        provisioned=settings.bus_topology == "provisioned",
        **options,
    )
    if check is not None and check.service(bus.user) != service:
        raise ConfigError(
            f"BDISC_BUS_SENDERS=checked: the {service} service must log in to RabbitMQ as "
            f"{settings.bus_user_prefix}{service}, not {bus.user!r} (BDISC_RABBITMQ_URL)"
        )
    return bus
