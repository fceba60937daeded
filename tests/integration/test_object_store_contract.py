"""One contract, two object stores: a local folder and S3 (SeaweedFS, real server)."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bdisc.adapters.local_store import LocalStore
from bdisc.adapters.s3_store import S3Store
from bdisc.errors import NotFound, Retryable, UserError
from bdisc.ports.object_store import ObjectStore

from ..conftest import admin_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        yield admin_store(endpoint, f"test-{uuid.uuid4().hex[:12]}")


def test_bytes_round_trip_and_listing(store: ObjectStore) -> None:
    store.put_bytes("site/a.txt", b"alpha")
    store.put_bytes("site/deep/b.txt", b"beta")
    store.put_bytes("other/c.txt", b"gamma")
    assert store.get_bytes("site/a.txt") == b"alpha"
    assert store.exists("site/deep/b.txt") and not store.exists("site/nope.txt")
    assert store.size("other/c.txt") == 5
    assert list(store.list("site/")) == ["site/a.txt", "site/deep/b.txt"]
    assert list(store.list()) == ["other/c.txt", "site/a.txt", "site/deep/b.txt"]
    store.put_bytes("site/a.txt", b"alpha 2")  # overwrite
    assert store.get_bytes("site/a.txt") == b"alpha 2"
    store.delete("site/a.txt")
    assert not store.exists("site/a.txt")
    store.delete("site/a.txt")  # deleting twice is fine


def test_version_changes_when_an_object_is_replaced(store: ObjectStore) -> None:
    store.put_bytes("v/a.bin", b"first")
    first = store.version("v/a.bin")
    assert store.version("v/a.bin") == first  # stable while unchanged
    time.sleep(0.01)
    store.put_bytes("v/a.bin", b"other")  # the same size, other content
    assert store.version("v/a.bin") != first
    with pytest.raises(NotFound):
        store.version("v/missing.bin")


def test_large_file_streams_both_ways(store: ObjectStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as f:  # 40 MiB: several multipart parts on S3
        for _ in range(40):
            f.write(os.urandom(1 << 20))
    store.put_file("audio/big.bin", big)
    back = tmp_path / "back.bin"
    store.download("audio/big.bin", back)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (big, back)]
    assert digest[0] == digest[1] and store.size("audio/big.bin") == 40 << 20


def test_download_url_serves_the_object(store: ObjectStore) -> None:
    store.put_bytes("results/map.png", b"\x89PNG fake")
    with urllib.request.urlopen(store.url("results/map.png", expires_s=60)) as response:
        assert response.read() == b"\x89PNG fake"


def test_missing_objects_are_not_found(store: ObjectStore, tmp_path: Path) -> None:
    for call in (
        lambda: store.get_bytes("no/such"),
        lambda: store.size("no/such"),
        lambda: store.download("no/such", tmp_path / "x"),
        lambda: store.url("no/such"),
    ):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("key", ["../escape.txt", "/abs.txt", "a//b.txt", "a/./b", "a\\b", ""])
def test_traversal_keys_are_refused(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(UserError):
        store.put_bytes(key, b"x")
    assert list(store.list()) == []
    assert not (tmp_path / "escape.txt").exists()


def test_unreachable_s3_is_retryable() -> None:
    with pytest.raises(Retryable):
        S3Store("127.0.0.1:1", "a", "b", "bucket-x")


def test_services_starting_together_share_a_new_bucket(s3_endpoint: str) -> None:
    """Every service creates the bucket at start-up; the ones that lose the race go on."""
    from concurrent.futures import ThreadPoolExecutor

    bucket = f"race-{uuid.uuid4().hex[:12]}"
    with ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: admin_store(s3_endpoint, bucket), range(6)))
    stores[0].put_bytes("k", b"v")
    assert all(s.get_bytes("k") == b"v" for s in stores)
