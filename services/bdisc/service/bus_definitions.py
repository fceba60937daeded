"""``python -m bdisc.service.bus_definitions``: the RabbitMQ definitions of a deployment
with a user per service and least privilege, to load into the broker
(``load_definitions`` in rabbitmq.conf, or ``rabbitmqctl import_definitions FILE``).

They hold the whole topology (``rabbitmq_bus``: three exchanges, three queues per stage,
their bindings), so no service needs to configure anything (``BDISC_BUS_TOPOLOGY=
provisioned``), and one user per service, ``<prefix><service>``:

- configure: nothing (a service cannot delete or redeclare a queue);
- write: the exchanges it publishes to (the gateway only ``bdisc``; the others also
  ``bdisc.retry`` and ``bdisc.dead``, for their retries and dead letters);
- read: its own stage's queue (the orchestrator: ``bdisc.events`` and every dead-letter
  queue, which it turns into failures).

Passwords come from ``BDISC_BUS_PASSWORD_<SERVICE>`` and are stored hashed (RabbitMQ's
salted SHA-256). What a user may *send* is checked by the consumers
(``BDISC_BUS_SENDERS=checked``, ``bdisc.app.senders``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bdisc.adapters.rabbitmq_bus import (
    DEAD_EXCHANGE,
    EXCHANGE,
    RETRY_EXCHANGE,
    bindings,
    queue_arguments,
    queue_names,
)
from bdisc.app import stages
from bdisc.app.senders import GATEWAY, ORCHESTRATOR, SERVICE_OF_STAGE
from bdisc.errors import ConfigError
from bdisc.service.settings import refuse_placeholder

SERVICES = (GATEWAY, *SERVICE_OF_STAGE.values())
NOTHING = "^$"
RIGHTS = ("configure", "write", "read")


class BusPasswords(BaseSettings):
    """One password per service's RabbitMQ user."""

    model_config = SettingsConfigDict(env_prefix="BDISC_BUS_PASSWORD_", extra="ignore")

    gateway: SecretStr = Field(min_length=12)
    orchestrator: SecretStr = Field(min_length=12)
    ingestion: SecretStr = Field(min_length=12)
    embedding: SecretStr = Field(min_length=12)
    clustering: SecretStr = Field(min_length=12)
    export: SecretStr = Field(min_length=12)
    evaluation: SecretStr = Field(min_length=12)
    training: SecretStr = Field(min_length=12)
    admin: SecretStr | None = Field(
        default=None, min_length=12, description="the operators' user (--admin-user), if any"
    )

    @field_validator("*")
    @classmethod
    def _not_a_placeholder(cls, value: object) -> object:
        return refuse_placeholder(value)

    def of(self, service: str) -> str:
        secret: SecretStr = getattr(self, service)
        return secret.get_secret_value()


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _names(*names: str) -> str:
    return "^(" + "|".join(re.escape(n) for n in names) + ")$" if names else NOTHING


def permissions(service: str) -> dict[str, str]:
    """What a service's user may configure, write (publish to) and read (consume)."""
    if service == GATEWAY:
        return {"configure": NOTHING, "write": _names(EXCHANGE), "read": NOTHING}
    if service == ORCHESTRATOR:
        dead = [queue_names(stage)[2] for stage in stages.PREFETCH]
        read = _names(queue_names(stages.EVENTS)[0], *dead)
    else:
        own = [stage for stage, s in SERVICE_OF_STAGE.items() if s == service]
        read = _names(*(queue_names(stage)[0] for stage in own))
    return {
        "configure": NOTHING,
        "write": _names(EXCHANGE, RETRY_EXCHANGE, DEAD_EXCHANGE),
        "read": read,
    }


def definitions(
    passwords: BusPasswords, vhost: str = "/", prefix: str = "bdisc-", admin: str | None = None
) -> dict[str, Any]:
    """The broker definitions: the virtual host, its topology, the users and their rights
    (and ``admin``, an administrator for the operators: loaded at boot, definitions
    replace the broker's default user)."""
    exchanges = [
        {
            "name": name,
            "vhost": vhost,
            "type": "direct",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for name in (EXCHANGE, RETRY_EXCHANGE, DEAD_EXCHANGE)
    ]
    queues, bound = [], []
    for stage in stages.PREFETCH:
        for name, arguments in queue_arguments(stage).items():
            queues.append(
                {
                    "name": name,
                    "vhost": vhost,
                    "durable": True,
                    "auto_delete": False,
                    "arguments": arguments,
                }
            )
        for exchange, queue in bindings(stage):
            bound.append(
                {
                    "source": exchange,
                    "vhost": vhost,
                    "destination": queue,
                    "destination_type": "queue",
                    "routing_key": stage,
                    "arguments": {},
                }
            )
    users = [
        {
            "name": f"{prefix}{service}",
            "password_hash": password_hash(passwords.of(service)),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": [],
            "limits": {},
        }
        for service in SERVICES
    ]
    rights = [
        {"user": f"{prefix}{service}", "vhost": vhost, **permissions(service)}
        for service in SERVICES
    ]
    if admin is not None:
        if passwords.admin is None:
            raise ConfigError(f"--admin-user {admin}: set BDISC_BUS_PASSWORD_ADMIN")
        users.append(
            {
                "name": admin,
                "password_hash": password_hash(passwords.admin.get_secret_value()),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
                "limits": {},
            }
        )
        rights.append({"user": admin, "vhost": vhost, **dict.fromkeys(RIGHTS, ".*")})
    return {
        "vhosts": [{"name": vhost}],
        "users": users,
        "permissions": rights,
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bound,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bdisc.service.bus_definitions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--vhost", default="/", help="the virtual host the services use")
    parser.add_argument("--prefix", default="bdisc-", help="the users are <prefix><service>")
    parser.add_argument("--out", default="-", help="a file (default: standard output)")
    parser.add_argument("--admin-user", help="also an administrator (BDISC_BUS_PASSWORD_ADMIN)")
    args = parser.parse_args(argv)
    try:
        passwords = BusPasswords()  # type: ignore[call-arg]  # from the environment
        found = definitions(passwords, args.vhost, args.prefix, args.admin_user)
    except ValidationError as exc:
        problems = "; ".join(
            f"BDISC_BUS_PASSWORD_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.stderr.write(f"bus_definitions: {problems}\n")
        return 2
    except ConfigError as exc:
        sys.stderr.write(f"bus_definitions: {exc.message}\n")
        return 2
    text = json.dumps(found, indent=1) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
