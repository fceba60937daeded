"""Each service's S3 account against a real policy engine (SeaweedFS enforces the IAM
policies of ``bdisc.service.store_policies``): every kind of object of ``bdisc.app.keys``
can be read, written, deleted and listed by exactly the services the table allows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from bdisc.adapters.s3_store import S3Store
from bdisc.app import keys
from bdisc.errors import InternalError, NotFound, Retryable
from bdisc.service.store_policies import ACCESS, DELETE, READ, SERVICES, WRITE, allowed
from devstack.stack import store_accounts

from ..conftest import admin_store

PROJECT, JOB = "field", "job1"
# one key of every kind the services store, made with keys.py as the services make them
KINDS = {
    "audio": keys.audio_prefix(PROJECT) + "siteA/r1.wav",
    "files": keys.files_prefix(PROJECT) + "truth.csv",
    "embeddings": keys.embedding_key("p1", "abc", "siteA/r1.wav"),
    "results": keys.results_prefix(PROJECT, JOB, "siteA") + "clusters.csv",
    "trainset": keys.trainset_prefix(PROJECT, JOB) + "manifest.csv",
    "models": keys.models_prefix(PROJECT, JOB) + "model.json",
    "cancel mark": keys.cancel_mark(PROJECT, JOB),
    "readiness": keys.READY_KEY,
}
SINGLE = {"cancel mark", "readiness"}


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> Iterator[tuple[str, S3Store]]:
    name = f"e2e-{uuid.uuid4().hex[:10]}"  # a bucket the development policies name
    admin = admin_store(s3_endpoint, name)
    yield name, admin
    for key in admin.list():
        admin.delete(key)


def account(s3_endpoint: str, bucket: str, service: str) -> S3Store:
    access, secret = store_accounts()[service]
    return S3Store(s3_endpoint, access, secret, bucket, provisioned=True)


def outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except InternalError as exc:
        assert "policy" in exc.message  # says what is wrong, not a bare S3 error
        return "denied"
    except NotFound:
        return "missing"
    return "ok"


def test_every_kind_of_object_is_reachable_by_exactly_the_services_allowed(
    s3_endpoint: str, bucket: tuple[str, S3Store]
) -> None:
    name, admin = bucket
    wrong: list[str] = []
    for service in SERVICES:
        store = account(s3_endpoint, name, service)
        for kind, key in KINDS.items():
            rights = allowed(service, key)
            admin.put_bytes(key, b"seed")
            expected = {
                "read": "ok" if READ in rights else "denied",
                "list": "ok" if READ in rights else "denied",
                "write": "ok" if WRITE in rights else "denied",
                "delete": "ok" if DELETE in rights else "denied",
            }
            # objects without a folder of their own are listed by their name
            listed = key if kind in SINGLE else key.rsplit("/", 1)[0] + "/"
            seen = {
                "read": outcome(lambda s=store, k=key: s.get_bytes(k)),
                "list": outcome(lambda s=store, p=listed: list(s.list(p))),
                "write": outcome(lambda s=store, k=key: s.put_bytes(k, b"new")),
                "delete": outcome(lambda s=store, k=key: s.delete(k)),
            }
            wrong += [
                f"{service} {op} {kind}: {seen[op]}, expected {expected[op]}"
                for op in expected
                if seen[op] != expected[op]
            ]
    assert not wrong, "\n".join(wrong)


def test_a_missing_object_is_missing_to_a_reader_and_refused_to_others(
    s3_endpoint: str, bucket: tuple[str, S3Store]
) -> None:
    name, _ = bucket
    cancel = keys.cancel_mark(PROJECT, "never-cancelled")
    for service in SERVICES:
        store = account(s3_endpoint, name, service)
        reads = READ in allowed(service, cancel)
        assert outcome(lambda s=store: s.exists(cancel)) == ("ok" if reads else "denied"), service
        assert outcome(lambda s=store: s.size(cancel)) == ("missing" if reads else "denied")


def test_every_service_has_an_account_and_no_account_makes_buckets(
    s3_endpoint: str,
) -> None:
    assert set(store_accounts()) == set(ACCESS)
    for access, secret in store_accounts().values():
        with pytest.raises(InternalError, match="policy"):  # the bucket is the set-up job's
            S3Store(s3_endpoint, access, secret, f"e2e-{uuid.uuid4().hex[:10]}")
    stranger = S3Store(s3_endpoint, "bdisc-gateway", "not-its-secret", "e2e-x", provisioned=True)
    with pytest.raises(Retryable, match="access key and secret"):  # a set-up still to run
        stranger.size(keys.READY_KEY)
