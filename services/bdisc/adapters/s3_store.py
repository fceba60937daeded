"""ObjectStore on MinIO or any S3 server, through the ``minio`` client.

The bucket is created at start-up if missing. Files go up as streamed multipart
uploads (16 MiB parts) and come down streamed to disk, so a 2-GB recording never sits
in memory. S3's "no such key" becomes NotFound; an unreachable server becomes Retryable.

Each service holds an account with least privilege (``bdisc.service.store_policies``):
then the bucket is ``provisioned`` (made with the accounts, not by the services), and
S3 answers a read of a missing key with 403 when the account may not list there; a
listing of the key tells "missing" (NotFound) from "not allowed" (InternalError: the
deployment's policy is wrong).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bdisc.errors import InternalError, NotFound, Retryable
from bdisc.ports.object_store import UploadForm, check_key

PART_SIZE = 16 * 1024 * 1024
MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}
DENIED = "AccessDenied"
# the account is not (yet, or any more) what the store knows: a deployment whose store
# set-up has not run, a secret being rotated; retried (with backoff) until it is
UNKNOWN_ACCOUNT = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
BUSY = {"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"}  # S3's own 5xx


class S3Store:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        public_endpoint: str | None = None,
        provisioned: bool = False,
    ) -> None:
        """``public_endpoint``: host:port that clients reach S3 at, when it differs from
        ``endpoint`` (``minio:9000`` inside compose, ``s3.example.org`` outside):
        presigned links are signed for it (locally: signing needs no request).
        ``provisioned``: the bucket exists (a service's account may not make it);
        otherwise it is made if missing."""
        from minio import Minio

        self.bucket = bucket
        scheme = "https" if secure else "http"
        self.bucket_url = f"{scheme}://{public_endpoint or endpoint}/{bucket}"
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self.signer = (
            Minio(
                public_endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region or "us-east-1",
            )
            if public_endpoint
            else self.client
        )
        if not provisioned:
            self._guard(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        from minio.error import S3Error

        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:  # services start together: another one made it first
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _guard(self, call, *args, key: str = "", reading: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        from minio.error import InvalidResponseError, S3Error, ServerError
        from urllib3.exceptions import HTTPError

        try:
            return call(*args, **kwargs)
        except S3Error as exc:
            if exc.code in MISSING:
                raise NotFound(f"no object {key!r} in bucket {self.bucket}", key=key) from exc
            if exc.code == DENIED:
                if reading and key and not self._listed(key):
                    raise NotFound(f"no object {key!r} in bucket {self.bucket}", key=key) from exc
                raise self._denied(key or self.bucket) from exc
            if exc.code in UNKNOWN_ACCOUNT:
                raise Retryable(
                    f"the object store does not know this service's account ({exc.code}): "
                    "check its access key and secret",
                    bucket=self.bucket,
                ) from exc
            if exc.code in BUSY:
                raise Retryable(
                    f"the object store is busy: {exc.code}", bucket=self.bucket
                ) from exc
            raise
        except (ServerError, InvalidResponseError) as exc:  # a 5xx without S3's error body
            raise Retryable(f"the object store failed: {exc}", bucket=self.bucket) from exc
        except HTTPError as exc:  # connection refused, timeouts: the server may come back
            raise Retryable(f"object store unreachable: {exc}", bucket=self.bucket) from exc

    def _listed(self, key: str) -> bool:
        """Whether ``key`` exists, from a listing of it (a read of a missing key was
        refused: S3 says 403 to accounts that may not list; denied here too: InternalError)."""

        def first() -> str | None:
            found = next(iter(self.client.list_objects(self.bucket, prefix=key)), None)
            return found.object_name if found is not None else None

        return bool(self._guard(first, key=key) == key)

    def _denied(self, key: str) -> InternalError:
        return InternalError(
            f"the object store refused this service's account access to {key!r} in bucket "
            f"{self.bucket}: its policy (python -m bdisc.service.store_policies) is not "
            "what this version needs",
            key=key,
        )

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self._guard(
            self.client.put_object,
            self.bucket,
            check_key(key),
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            key=key,
        )

    def put_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> None:
        self._guard(
            self.client.fput_object,
            self.bucket,
            check_key(key),
            str(path),
            content_type=content_type,
            part_size=PART_SIZE,
            key=key,
        )

    def get_bytes(self, key: str) -> bytes:
        response = self._guard(
            self.client.get_object, self.bucket, check_key(key), key=key, reading=True
        )
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._guard(
            self.client.get_object,
            self.bucket,
            check_key(key),
            offset=offset,
            length=length,
            key=key,
            reading=True,
        )
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._guard(
            self.client.fget_object, self.bucket, check_key(key), str(path), key=key, reading=True
        )

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        stat = self._guard(
            self.client.stat_object, self.bucket, check_key(key), key=key, reading=True
        )
        return int(stat.size or 0)

    def version(self, key: str) -> str:
        stat = self._guard(
            self.client.stat_object, self.bucket, check_key(key), key=key, reading=True
        )
        return f"{int(stat.size or 0)}-{(stat.etag or '').strip(chr(34))}"

    def list(self, prefix: str = "") -> Iterator[str]:
        def names() -> list[str]:  # list_objects is lazy: iterate inside the guard
            objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(o.object_name for o in objects if o.object_name)

        yield from self._guard(names, key=prefix)

    def delete(self, key: str) -> None:
        self._guard(self.client.remove_object, self.bucket, check_key(key), key=key)

    def url(self, key: str, expires_s: int = 3600) -> str:
        if not self.exists(key):
            raise NotFound(f"no object {key!r}", key=key)
        return str(
            self._guard(
                self.signer.presigned_get_object,
                self.bucket,
                check_key(key),
                expires=timedelta(seconds=expires_s),
                key=key,
            )
        )

    def upload_form(self, key: str, max_bytes: int, expires_s: int = 3600) -> UploadForm:
        """A presigned POST: S3 refuses another key, a file over ``max_bytes`` (or empty)
        and an upload after ``expires_s``."""
        from minio.datatypes import PostPolicy

        policy = PostPolicy(self.bucket, datetime.now(UTC) + timedelta(seconds=expires_s))
        policy.add_equals_condition("key", check_key(key))
        policy.add_content_length_range_condition(1, max_bytes)
        fields = self._guard(self.signer.presigned_post_policy, policy, key=key)
        return UploadForm(self.bucket_url, {"key": key, **fields}, max_bytes)
