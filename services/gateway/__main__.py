"""python -m gateway [serve | create-project NAME | rotate-key NAME] (wiring only)."""

from __future__ import annotations

import sys

import sqlalchemy as sa

from bdisc import tracing
from bdisc.adapters.schema_gate import await_schema
from bdisc.adapters.spectrogram_client import SpectrogramClient
from bdisc.adapters.sql_job_store import SqlJobStore
from bdisc.adapters.sql_label_store import SqlLabelStore
from bdisc.adapters.sql_project_store import SqlProjectStore
from bdisc.app.keys import READY_KEY
from bdisc.errors import BdiscError
from bdisc.logs import configure
from bdisc.service.boot import s3_store
from bdisc.service.bus import rabbit_bus
from bdisc.service.metrics import serve_metrics
from bdisc.service.settings import load
from gateway.app import create_app
from gateway.deps import Deps
from gateway.settings import GatewaySettings


def build(s: GatewaySettings) -> Deps:
    await_schema(s.database_url, s.schema_wait_s)  # the migrate Job changes the schema
    objects = s3_store(s)
    jobs = SqlJobStore(s.database_url)
    bus = rabbit_bus(s, "gateway")

    def database() -> None:
        with jobs.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    return Deps(
        objects,
        jobs,
        SqlProjectStore(jobs.engine),
        bus,
        SqlLabelStore(jobs.engine),
        s.max_upload_mb << 20,
        {
            "database": database,
            "object_store": lambda: objects.exists(READY_KEY),
            "broker": lambda: bus.declare("events"),
        },
        tiles=SpectrogramClient(
            s.spectrogram_addr, token=s.grpc_token.get_secret_value() if s.grpc_token else None
        ),
        webhook_allow_private=s.webhook_allow_private,
        rate_per_s=s.rate_limit_per_s,
        rate_burst=s.rate_limit_burst,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    known = args in ([], ["serve"]) or (
        len(args) == 2 and args[0] in ("create-project", "rotate-key")
    )
    if not known:
        sys.stderr.write(
            "usage: python -m gateway [serve | create-project NAME | rotate-key NAME]\n"
        )
        return 2
    try:
        s = load(GatewaySettings)
        configure(s.log_level, s.log_format)
        tracing.setup("gateway", s.otlp_endpoint)
        deps = build(s)
        if args[:1] == ["create-project"]:
            project, key = deps.projects.create(args[1])
            sys.stdout.write(
                f"project {project.id}\napi key {key}\nwebhook secret {project.webhook_secret}\n"
            )
            return 0
        if args[:1] == ["rotate-key"]:  # the old key stops working
            sys.stdout.write(f"project {args[1]}\napi key {deps.projects.rotate_key(args[1])}\n")
            return 0
        serve_metrics(s.metrics_port)  # a port of its own: the API's has no /metrics
    except BdiscError as exc:
        sys.stderr.write(f"gateway: {exc.message}\n")
        return 2
    import uvicorn

    uvicorn.run(create_app(deps), host=s.host, port=s.port, log_level=s.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
