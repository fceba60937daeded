"""A user per service with least privilege on the real RabbitMQ: the definitions of
``bdisc.service.bus_definitions`` imported into a virtual host of their own, then each
service's rights probed, a forged sender refused by the broker, and messages from
senders that may not send them dropped by the consumers (``bdisc.app.senders``)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from pydantic import SecretStr

from bdisc.adapters.rabbitmq_bus import DEAD_EXCHANGE, RabbitBus
from bdisc.app import stages
from bdisc.errors import InternalError, Retryable
from bdisc.ports.message_bus import DeadLetter, Message
from bdisc.service.bus import REFUSED, rabbit_bus
from bdisc.service.settings import ServiceSettings

from ..e2e.stack_helpers import bus_users, own_vhost, rabbitmqctl

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Provisioned:
    prefix: str
    urls: dict[str, str]  # service -> its amqp URL

    def bus(self, service: str, checked: bool = True, **options: Any) -> RabbitBus:
        """The bus ``service`` runs, made as the service makes it (``rabbit_bus``)."""
        settings = ServiceSettings(
            rabbitmq_url=self.urls[service],
            s3_endpoint="127.0.0.1:1",
            s3_access_key="unused",
            s3_secret_key=SecretStr("unused"),
            bus_senders="checked" if checked else "any",
            bus_user_prefix=self.prefix,
            bus_topology="provisioned",
        )
        return rabbit_bus(settings, service, **options)


@pytest.fixture
def provisioned(rabbit_url: str) -> Iterator[Provisioned]:
    """The deployment's definitions imported into a virtual host of their own (as
    rabbitmq.conf would load them), a user per service; both gone afterwards."""
    with own_vhost(rabbit_url) as vhost_url, bus_users(vhost_url) as users:
        prefix = users["gateway"]["BDISC_BUS_USER_PREFIX"]
        yield Provisioned(prefix, {s: env["BDISC_RABBITMQ_URL"] for s, env in users.items()})


def message(stage: str, kind: str, job: str = "job-1") -> Message:
    return Message(stage, job, f"{kind}-{uuid.uuid4().hex[:6]}", {"kind": kind})


def drain(bus: RabbitBus, stage: str) -> list[Message]:
    handled: list[Message] = []
    bus.consume(stage, handled.append, idle_timeout_s=0.5)
    return handled


def test_each_service_reads_only_its_own_queue_and_configures_nothing(
    provisioned: Provisioned,
) -> None:
    embedding = provisioned.bus("embedding")
    assert drain(embedding, stages.EMBED) == []  # its own queue: allowed (and empty)
    with pytest.raises(Retryable, match="ACCESS_REFUSED"):
        drain(provisioned.bus("embedding"), stages.CLUSTER)  # another stage's work
    gateway = provisioned.bus("gateway")
    gateway.publish(message(stages.EVENTS, "cancel"))  # the gateway sends commands...
    with pytest.raises(Retryable, match="ACCESS_REFUSED"):
        drain(provisioned.bus("gateway"), stages.EVENTS)  # ...and reads nothing
    # nobody configures: declaring the topology itself (not provisioned) is refused, as a
    # wrong deployment (no retry makes it pass), not as a broker that is away
    declaring = RabbitBus(provisioned.urls["orchestrator"])
    with pytest.raises(InternalError, match="ACCESS_REFUSED") as refused:
        declaring.publish(message(stages.EMBED, "embed"))
    assert not isinstance(refused.value, Retryable) and "bus_definitions" in refused.value.message
    with pytest.raises(InternalError, match="ACCESS_REFUSED"):
        declaring.publish_many([message(stages.EMBED, "embed")])
    orchestrator = provisioned.bus("orchestrator")
    assert [m.payload["kind"] for m in drain(orchestrator, stages.EVENTS)] == ["cancel"]
    for bus in (embedding, gateway, declaring, orchestrator):
        bus.close()


def test_a_sender_that_is_not_the_login_is_refused_by_the_broker(
    provisioned: Provisioned,
) -> None:
    forger = provisioned.bus("embedding")
    forger.user = f"{provisioned.prefix}orchestrator"  # stamped on what it publishes
    with pytest.raises(Retryable, match="PRECONDITION_FAILED"):
        forger.publish(message(stages.CLUSTER, "cluster"))
    forger.close()
    clustering = provisioned.bus("clustering")
    assert drain(clustering, stages.CLUSTER) == []  # nothing got through
    clustering.close()


def test_consumers_handle_only_what_the_sender_may_send(provisioned: Provisioned) -> None:
    embedding, orchestrator = provisioned.bus("embedding"), provisioned.bus("orchestrator")
    gateway = provisioned.bus("gateway")
    # work: only the orchestrator (or the stage's own retries) orders it
    embedding.publish(message(stages.CLUSTER, "cluster", job="forged"))
    orchestrator.publish(message(stages.CLUSTER, "cluster", job="real"))
    clustering = provisioned.bus("clustering")
    handled = drain(clustering, stages.CLUSTER)
    assert [m.job_id for m in handled] == ["real"] and clustering.refused == 1
    assert handled[0].sender == f"{provisioned.prefix}orchestrator"
    # events: commands from the gateway, a stage's events from that stage's service
    gateway.publish(message(stages.EVENTS, "embedded", job="forged"))
    embedding.publish(message(stages.EVENTS, "clustered", job="forged"))
    embedding.publish(message(stages.EVENTS, "embedded", job="real"))
    gateway.publish(message(stages.EVENTS, "cancel", job="real"))
    handled = drain(orchestrator, stages.EVENTS)
    assert [(m.job_id, m.payload["kind"]) for m in handled] == [
        ("real", "embedded"),
        ("real", "cancel"),
    ]
    assert orchestrator.refused == 2
    # unchecked, the same consumer would have taken the forged ones too
    embedding.publish(message(stages.CLUSTER, "cluster", job="forged"))
    assert [
        m.job_id for m in drain(provisioned.bus("clustering", checked=False), stages.CLUSTER)
    ] == ["forged"]
    for bus in (embedding, orchestrator, gateway, clustering):
        bus.close()


def test_a_forged_dead_letter_fails_nothing(provisioned: Provisioned) -> None:
    """A worker writes to the dead-letter exchange (its own dead letters), so it could
    forge some: another stage's work, or a command on its own stage's dead-letter queue
    (which would fail the whole job as unreadable work). Only a stage's own work, from
    that stage's service or the orchestrator, is reported."""
    embedding, clustering = provisioned.bus("embedding"), provisioned.bus("clustering")
    refused = REFUSED.labels(stages.CLUSTER, "cluster")._value.get()
    forged = message(stages.CLUSTER, "cluster", job="forged")
    embedding._send(DEAD_EXCHANGE, stages.CLUSTER, forged.to_bytes(), {"x-error": "forged"})
    real = message(stages.CLUSTER, "cluster", job="real")
    clustering._send(DEAD_EXCHANGE, stages.CLUSTER, real.to_bytes(), {"x-error": "gave up"})
    for body in (
        message(stages.EMBED, "cancel", job="forged"),  # not work: "unreadable", job failed
        message(stages.CLUSTER, "cluster", job="forged"),  # another stage's work
    ):
        embedding._send(DEAD_EXCHANGE, stages.EMBED, body.to_bytes(), {"x-error": "forged"})
    orchestrator = provisioned.bus("orchestrator")
    reported: list[DeadLetter] = []
    assert orchestrator.settle_dead_letters(stages.CLUSTER, reported.append) == 1
    assert orchestrator.settle_dead_letters(stages.EMBED, reported.append) == 0
    assert [Message.from_bytes(d.body).job_id for d in reported] == ["real"]
    assert reported[0].error == "gave up" and orchestrator.refused == 3
    assert REFUSED.labels(stages.CLUSTER, "cluster")._value.get() == refused + 1  # alerted on
    for bus in (embedding, clustering, orchestrator):
        bus.close()


def test_a_user_that_may_not_write_is_told_so_at_once(provisioned: Provisioned) -> None:
    """A user without write rights in the provisioned topology: a confirmed batch and a
    single publish both fail at once as a wrong deployment, not as a broker that is away
    (no 60-s wait for confirms, no retry)."""
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None
    url = provisioned.urls["orchestrator"]
    vhost, base = unquote(url.rsplit("/", 1)[1]), url.split("@", 1)[1]
    user, secret = f"{provisioned.prefix}mute", "pw-mute-1234567"
    assert rabbitmqctl(ctl, "add_user", user, secret).returncode == 0
    try:
        assert (
            rabbitmqctl(ctl, "set_permissions", "-p", vhost, user, "^$", "^$", ".*").returncode == 0
        )
        mute = RabbitBus(f"amqp://{user}:{secret}@{base}", provisioned=True)
        with pytest.raises(InternalError, match="ACCESS_REFUSED"):
            mute.publish_many([message(stages.EMBED, "embed")])
        with pytest.raises(InternalError, match="ACCESS_REFUSED"):
            mute.publish(message(stages.EMBED, "embed"))
        mute.close()
    finally:
        rabbitmqctl(ctl, "delete_user", user)
