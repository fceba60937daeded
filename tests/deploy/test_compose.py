"""docker-compose.yml, checked by the real docker-compose and against the code."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

from .conftest import (
    MIGRATE_SETTINGS,
    SETTINGS,
    compose,
    compose_binary,
    default,
    env_names,
    required_env,
    run,
)

INFRA = {
    "minio",
    "minio-init",
    "store-policies",
    "rabbitmq",
    "postgres",
    "migrate",
    "bus-definitions",
}
OPTIONAL = {"cli", "prometheus", "grafana"}


def test_compose_file_is_valid() -> None:
    done = compose("config", "-q")
    assert done.returncode == 0, done.stderr


def test_secrets_have_no_defaults(tmp_path: Any) -> None:
    """Without an .env the stack refuses to start instead of using a known password."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = run([compose_binary(), "--env-file", str(empty), "config", "-q"])
    assert done.returncode != 0 and "required variable" in done.stderr


def test_every_service_is_deployed_and_nothing_else(compose_model: dict[str, Any]) -> None:
    services = set(compose_model["services"])
    assert services - INFRA - OPTIONAL == set(SETTINGS)
    for name in SETTINGS:
        spec = compose_model["services"][name]
        assert spec["build"]["target"] == name
        assert importlib.util.find_spec(name) is not None, f"no python -m {name}"


def test_env_matches_each_services_settings(compose_model: dict[str, Any]) -> None:
    """No drift: every BDISC_* variable given to a service is one of its settings, and
    every setting without a default is given."""
    for name, cls in {**SETTINGS, "migrate": MIGRATE_SETTINGS}.items():
        env = {k for k in compose_model["services"][name]["environment"] if k.startswith("BDISC_")}
        assert env <= env_names(cls), (name, sorted(env - env_names(cls)))
        assert required_env(cls) <= env, (name, sorted(required_env(cls) - env))


def test_addresses_match_the_code(compose_model: dict[str, Any]) -> None:
    from gateway.settings import GatewaySettings
    from spectrogram.settings import SpectrogramSettings

    services = compose_model["services"]
    gateway = services["gateway"]
    assert gateway["ports"][0]["target"] == 8000
    assert gateway["environment"]["BDISC_SPECTROGRAM_ADDR"] == (
        f"spectrogram:{default(SpectrogramSettings, 'grpc_port')}"
    )
    assert default(GatewaySettings, "spectrogram_addr").endswith(":50070")
    assert services["embedding"]["environment"]["BDISC_S3_ENDPOINT"] == "minio:9000"


def test_workers_are_hardened_and_wait_for_infrastructure(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    for name in SETTINGS:
        spec = services[name]
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in spec["security_opt"], name
        assert spec["restart"] == "unless-stopped", name
        conditions = {dep: c["condition"] for dep, c in spec["depends_on"].items()}
        assert conditions["rabbitmq"] == "service_healthy", name
        assert conditions["minio-init"] == "service_completed_successfully", name
    for name in ("gateway", "orchestrator"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("minio", "rabbitmq", "postgres", "gateway"):
        assert services[name]["healthcheck"]["test"], name
    assert services["embedding"]["deploy"]["replicas"] == 2  # EMBED_REPLICAS or --scale
    volumes = set(compose_model["volumes"])
    assert {"minio-data", "rabbitmq-data", "postgres-data"} <= volumes


def test_monitoring_profile_scrapes_every_service(compose_model: dict[str, Any]) -> None:
    import json

    import yaml

    from .conftest import ROOT

    config = yaml.safe_load((ROOT / "docker/monitoring/prometheus.yml").read_text())
    scraped = set(config["scrape_configs"][0]["dns_sd_configs"][0]["names"])
    assert scraped == set(SETTINGS)
    assert config["scrape_configs"][0]["dns_sd_configs"][0]["port"] == default(
        SETTINGS["gateway"], "metrics_port"
    )
    dashboard = json.loads((ROOT / "docker/monitoring/grafana/dashboards/bdisc.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("bdisc_queue_messages", "bdisc_windows_total", "bdisc_items_total"):
        assert metric in exprs
    grafana = compose_model["services"]["grafana"]
    assert any("provisioning" in v["target"] for v in grafana["volumes"])


def test_each_service_logs_in_to_the_broker_as_itself(compose_model: dict[str, Any]) -> None:
    """A RabbitMQ user per service (bdisc-<service>, a password of its own), the broker's
    definitions written by the one-shot before it starts and loaded from where it writes
    them, and every consumer checking its senders."""
    from urllib.parse import urlsplit

    from bdisc.service.bus_definitions import SERVICES, BusPasswords

    from .conftest import ROOT

    services = compose_model["services"]
    passwords = set()
    for name in SERVICES:
        env = services[name]["environment"]
        url = urlsplit(env["BDISC_RABBITMQ_URL"])
        assert url.username == f"bdisc-{name}", name
        passwords.add(url.password)
        assert env["BDISC_BUS_SENDERS"] == "checked" and env["BDISC_BUS_TOPOLOGY"] == "provisioned"
    assert len(passwords) == len(SERVICES)  # none shared
    assert "BDISC_RABBITMQ_URL" not in services["spectrogram"]["environment"]  # gRPC only
    one_shot = services["bus-definitions"]
    assert set(one_shot["environment"]) == env_names(BusPasswords)
    out = one_shot["command"][one_shot["command"].index("--out") + 1]
    broker = services["rabbitmq"]
    assert broker["depends_on"]["bus-definitions"]["condition"] == "service_completed_successfully"
    mounts = {v["target"]: v["source"] for v in broker["volumes"]}
    conf = (ROOT / "docker/rabbitmq/20-definitions.conf").read_text()
    loaded = next(line.split("=", 1)[1].strip() for line in conf.splitlines() if "=" in line)
    assert mounts[str(Path(loaded).parent)] == "rabbitmq-definitions"
    assert {v["target"]: v["source"] for v in one_shot["volumes"]}[str(Path(out).parent)] == (
        "rabbitmq-definitions"
    )
    assert Path(loaded).name == Path(out).name


def test_each_service_logs_in_to_the_store_as_itself(
    compose_model: dict[str, Any], tmp_path: Path
) -> None:
    """A MinIO user per service (bdisc-<service>, a secret of its own, never the root
    account), made by minio-init from the policies the store-policies one-shot writes for
    the deployment's bucket; no service makes the bucket."""
    from bdisc.service.store_policies import SERVICES, main

    services = compose_model["services"]
    secrets = set()
    root = services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["BDISC_S3_ACCESS_KEY"] == f"bdisc-{name}", name
        assert env["BDISC_S3_PROVISIONED"] == "true"
        secrets.add(env["BDISC_S3_SECRET_KEY"])
    assert len(secrets) == len(SERVICES) and root not in secrets  # none shared, no root
    writer, init = services["store-policies"], services["minio-init"]
    assert writer["network_mode"] == "none"
    out = writer["command"][writer["command"].index("--out") + 1]
    bucket = writer["command"][writer["command"].index("--bucket") + 1]
    assert (
        bucket
        == init["environment"]["BDISC_BUCKET"]
        == services["gateway"]["environment"]["BDISC_S3_BUCKET"]
    )
    assert init["depends_on"]["store-policies"]["condition"] == "service_completed_successfully"
    mounts = {v["target"]: v["source"] for v in init["volumes"]}
    assert mounts["/policies"] == {v["target"]: v["source"] for v in writer["volumes"]}[out]
    script = init["command"][-1]
    assert script.startswith("/policies/")
    for name in SERVICES:  # every secret the script reads is given to it
        assert (
            init["environment"][f"S3_SECRET_{name.upper()}"]
            == services[name]["environment"]["BDISC_S3_SECRET_KEY"]
        )
        assert services[name]["depends_on"]["minio-init"]["condition"] == (
            "service_completed_successfully"
        )
    # what the one-shot writes: a policy per service and the script, valid POSIX shell
    assert main(["--bucket", bucket, "--out", str(tmp_path)]) == 0
    written = tmp_path / Path(script).name
    assert {p.name for p in tmp_path.iterdir()} == {f"{n}.json" for n in SERVICES} | {written.name}
    assert subprocess.run(["sh", "-n", str(written)], capture_output=True).returncode == 0
    text = written.read_text()
    for name in SERVICES:
        assert f'account {name} "$S3_SECRET_{name.upper()}"' in text
