"""k8s/: every overlay built with the real kubectl, schema-checked with
kubernetes-validate --strict, and held against the code and our rules."""

from __future__ import annotations

from typing import Any

import pytest

from bdisc.app import stages
from bdisc.service.metrics import BACKLOG
from devstack.stack import SERVICES

from .conftest import (
    K8S_VERSION,
    MIGRATE_SETTINGS,
    OVERLAYS,
    ROOT,
    SETTINGS,
    default,
    env_names,
    required_env,
    run,
    tool,
)

Docs = list[dict[str, Any]]


def kind(docs: Docs, name: str) -> Docs:
    return [d for d in docs if d["kind"] == name]


def test_every_service_has_a_deployment_and_nothing_unknown(overlays: dict[str, Docs]) -> None:
    assert set(SERVICES) | {"embedding"} == set(SETTINGS)  # the stack runs the same set
    for overlay, docs in overlays.items():
        deployments = {d["metadata"]["name"] for d in kind(docs, "Deployment")}
        assert deployments == set(SETTINGS), overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_strict_schema_validation(
    overlay: str, overlays: dict[str, Docs], tmp_path: Any
) -> None:
    import yaml

    built = tmp_path / f"{overlay}.yaml"
    built.write_text(yaml.safe_dump_all(overlays[overlay]))
    done = run([tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet", str(built)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_hardened_probed_and_sized(overlay: str, overlays: dict[str, Docs]) -> None:
    docs = overlays[overlay]
    accounts = {d["metadata"]["name"] for d in kind(docs, "ServiceAccount")}
    budgets = [d["spec"]["selector"]["matchLabels"] for d in kind(docs, "PodDisruptionBudget")]
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    for d in kind(docs, "Deployment") + kind(docs, "Job"):
        name, pod = d["metadata"]["name"], d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] in accounts, name
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert {"requests", "limits"} <= set(container["resources"]), name
        if d["kind"] == "Job":
            continue
        assert {"livenessProbe", "readinessProbe"} <= set(container), name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in (container["livenessProbe"], container["readinessProbe"]):
            if "grpc" in probe:  # native gRPC probes on the gRPC servers
                assert probe["grpc"]["port"] == ports["grpc"], name
            else:
                assert probe["httpGet"]["port"] in ports, name
        assert {"app.kubernetes.io/name": name} in budgets, f"no PodDisruptionBudget for {name}"
    assert kind(docs, "Job")[0]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "bdisc.service.migrate_db",
    ]
    policies = {d["metadata"]["name"]: d["spec"] for d in kind(docs, "NetworkPolicy")}
    assert policies["default-deny-ingress"]["podSelector"] == {}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_and_ports_match_the_code(overlay: str, overlays: dict[str, Docs]) -> None:
    """No drift: each container gets only variables its settings know, every required
    setting is provided (ConfigMap, Secret or env), ports are the code's defaults."""
    docs = overlays[overlay]
    config = kind(docs, "ConfigMap")[0]["data"]
    secrets = {d["metadata"]["name"]: set(d.get("data", {})) for d in kind(docs, "Secret")}
    # prod expects its Secrets to exist: their keys are documented in the overlay
    platform_keys = {"BDISC_GRPC_TOKEN"}  # the gRPC services' shared token
    for name, keys in secrets.items():
        if name.startswith("bdisc-platform"):
            assert keys == platform_keys
    for d in kind(docs, "Deployment") + kind(docs, "Job"):
        name = d["metadata"]["name"]
        if name == STORE_INIT:  # MinIO's mc, not a bdisc service (its own test below)
            continue
        cls = SETTINGS.get(name, MIGRATE_SETTINGS)
        (container,) = d["spec"]["template"]["spec"]["containers"]
        shared = set(config) | platform_keys if container.get("envFrom") else set()
        given = shared | {e["name"] for e in container.get("env", [])}
        assert given <= env_names(cls), (name, sorted(given - env_names(cls)))
        assert required_env(cls) <= given, (name, sorted(required_env(cls) - given))
        values = {e["name"]: e.get("value") for e in container.get("env", [])}
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if "metrics" in ports:
            assert (
                ports["metrics"]
                == default(cls, "metrics_port")
                == int(config["BDISC_METRICS_PORT"])
            )
        if "grpc" in ports:
            assert ports["grpc"] == default(cls, "grpc_port") == int(values["BDISC_GRPC_PORT"])
        if name == "gateway":
            assert ports["http"] == default(cls, "port")
            assert values["BDISC_SPECTROGRAM_ADDR"] == "spectrogram:50070"


STORE_INIT = "bdisc-store-init"


def test_scaling(overlays: dict[str, Docs]) -> None:
    (hpa,) = kind(overlays["prod"], "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "embedding"
    assert not kind(overlays["prod-keda"], "HorizontalPodAutoscaler")
    (scaled,) = kind(overlays["prod-keda"], "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "embedding"
    # on the orchestrator's backlog gauge: the queue is kept short by fair dispatch
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert f'{BACKLOG}{{stage="{stages.EMBED}"}}' in trigger["metadata"]["query"]
    (monitor,) = kind(overlays["prod"], "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    services = kind(overlays["prod"], "Service")
    assert all(any(p["name"] == "metrics" for p in s["spec"]["ports"]) for s in services)


def test_dev_runs_its_own_infrastructure(overlays: dict[str, Docs]) -> None:
    docs = overlays["dev"]
    assert {d["metadata"]["name"] for d in kind(docs, "StatefulSet")} == {
        "minio",
        "rabbitmq",
        "postgres",
    }
    config = kind(docs, "ConfigMap")[0]["data"]
    services = {d["metadata"]["name"]: d for d in kind(docs, "Service")}
    host, port = config["BDISC_S3_ENDPOINT"].split(":")
    assert any(p["port"] == int(port) for p in services[host]["spec"]["ports"])
    assert not kind(overlays["prod"], "StatefulSet")  # prod: external endpoints


def test_readme_documents_deploy() -> None:
    readme = (ROOT / "README.md").read_text()
    for needle in ("## Deploy", "kubectl apply -k k8s/overlays/prod", "--scale embedding="):
        assert needle in readme, needle


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_logs_in_to_the_broker_as_itself(
    overlay: str, overlays: dict[str, Docs]
) -> None:
    """Every service but the spectrogram's reads its RabbitMQ URL from its own key of the
    bdisc-bus Secret; consumers check senders and the topology is provisioned. In dev,
    the broker loads definitions whose users are exactly those URLs' (hashes checked),
    with the generator's rights and topology."""
    import base64
    import hashlib
    import json
    from urllib.parse import urlsplit

    from bdisc.service.bus_definitions import SERVICES as BUS_SERVICES
    from bdisc.service.bus_definitions import BusPasswords, definitions

    docs = overlays[overlay]
    config = kind(docs, "ConfigMap")
    settings = next(c["data"] for c in config if c["metadata"]["name"].startswith("bdisc-config"))
    assert settings["BDISC_BUS_SENDERS"] == "checked"
    assert settings["BDISC_BUS_TOPOLOGY"] == "provisioned"
    for d in kind(docs, "Deployment"):
        name = d["metadata"]["name"]
        env = {e["name"]: e for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if name not in BUS_SERVICES:
            assert "BDISC_RABBITMQ_URL" not in env, name
            continue
        ref = env["BDISC_RABBITMQ_URL"]["valueFrom"]["secretKeyRef"]
        assert ref["name"].startswith("bdisc-bus") and ref["key"] == name, name
    if overlay != "dev":
        return
    secrets = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in kind(docs, "Secret")}
    urls = {k: urlsplit(base64.b64decode(v).decode()) for k, v in secrets["bdisc-bus"].items()}
    loaded = json.loads(base64.b64decode(secrets["rabbitmq-definitions"]["definitions.json"]))
    users = {u["name"]: u for u in loaded["users"]}
    for service, url in urls.items():
        assert url.username == f"bdisc-{service}"
        stored = base64.b64decode(users[url.username]["password_hash"])
        assert stored[4:] == hashlib.sha256(stored[:4] + str(url.password).encode()).digest()
    fresh = definitions(BusPasswords(**{s: "x" * 12 for s in BUS_SERVICES}), "/", "bdisc-")
    for part in ("permissions", "exchanges", "queues", "bindings", "vhosts"):
        assert [p for p in loaded[part] if p.get("user") != "bdisc"] == fresh[part], part
    assert "administrator" in users["bdisc"]["tags"]
    (broker,) = [s for s in kind(docs, "StatefulSet") if s["metadata"]["name"] == "rabbitmq"]
    mounts = {
        m["mountPath"] for m in broker["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert {"/etc/rabbitmq/definitions", "/etc/rabbitmq/conf.d/20-definitions.conf"} <= mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_logs_in_to_the_store_as_itself(
    overlay: str, overlays: dict[str, Docs]
) -> None:
    """Every service reads its S3 account from its own keys of the bdisc-store Secret and
    finds the bucket provisioned; no shared S3 credentials remain. In dev, the store-init
    Job makes exactly those users (bdisc-<service>) with the release's own policies."""
    import base64

    from bdisc.service.store_policies import SERVICES as STORE_SERVICES

    docs = overlays[overlay]
    settings = next(
        c["data"]
        for c in kind(docs, "ConfigMap")
        if c["metadata"]["name"].startswith("bdisc-config")
    )
    assert settings["BDISC_S3_PROVISIONED"] == "true"
    assert not {"BDISC_S3_ACCESS_KEY", "BDISC_S3_SECRET_KEY"} & set(settings)
    deployed = {d["metadata"]["name"]: d for d in kind(docs, "Deployment")}
    assert set(STORE_SERVICES) <= set(deployed)
    for name in STORE_SERVICES:
        env = {
            e["name"]: e for e in deployed[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        for variable, suffix in (
            ("BDISC_S3_ACCESS_KEY", "access-key"),
            ("BDISC_S3_SECRET_KEY", "secret-key"),
        ):
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert ref["name"].startswith("bdisc-store") and ref["key"] == f"{name}-{suffix}"
    if overlay != "dev":
        return
    secrets = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in kind(docs, "Secret")}
    store = {k: base64.b64decode(v).decode() for k, v in secrets["bdisc-store"].items()}
    assert len({store[f"{n}-secret-key"] for n in STORE_SERVICES}) == len(STORE_SERVICES)
    (job,) = [j for j in kind(docs, "Job") if j["metadata"]["name"] == STORE_INIT]
    pod = job["spec"]["template"]["spec"]
    (writer,) = pod["initContainers"]
    (apply,) = pod["containers"]
    assert writer["command"][:3] == ["python", "-m", "bdisc.service.store_policies"]
    out = writer["command"][writer["command"].index("--out") + 1]
    assert apply["command"][-1] == f"{out}/apply-minio.sh"
    env = {e["name"]: e for e in apply["env"]}
    for name in STORE_SERVICES:
        assert store[f"{name}-access-key"] == f"bdisc-{name}"  # the user the script makes
        ref = env[f"S3_SECRET_{name.upper()}"]["valueFrom"]["secretKeyRef"]
        assert ref["name"].startswith("bdisc-store") and ref["key"] == f"{name}-secret-key"
    bucket = env["BDISC_BUCKET"]["valueFrom"]["configMapKeyRef"]["key"]
    assert bucket == "BDISC_S3_BUCKET" and writer["args"] == ["--bucket", "$(BDISC_S3_BUCKET)"]
