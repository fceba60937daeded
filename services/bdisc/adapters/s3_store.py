"""ObjectStore on MinIO or any S3 server, through the ``minio`` client.

The bucket is created at start-up if missing. Files go up as streamed multipart
uploads (16 MiB parts) and come down streamed to disk, so a 2-GB recording never sits
in memory. S3's "no such key" becomes NotFound; an unreachable server becomes Retryable.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from bdisc.errors import NotFound, Retryable
from bdisc.ports.object_store import check_key

PART_SIZE = 16 * 1024 * 1024
MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


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
    ) -> None:
        """``public_endpoint``: host:port that clients reach S3 at, when it differs from
        ``endpoint`` (``minio:9000`` inside compose, ``s3.example.org`` outside):
        presigned links are signed for it (locally: signing needs no request)."""
        from minio import Minio

        self.bucket = bucket
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

    def _guard(self, call, *args, key: str = "", **kwargs):  # type: ignore[no-untyped-def]
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            return call(*args, **kwargs)
        except S3Error as exc:
            if exc.code in MISSING:
                raise NotFound(f"no object {key!r} in bucket {self.bucket}", key=key) from exc
            raise
        except HTTPError as exc:  # connection refused, timeouts: the server may come back
            raise Retryable(f"object store unreachable: {exc}", bucket=self.bucket) from exc

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
        response = self._guard(self.client.get_object, self.bucket, check_key(key), key=key)
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
        )
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._guard(self.client.fget_object, self.bucket, check_key(key), str(path), key=key)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        stat = self._guard(self.client.stat_object, self.bucket, check_key(key), key=key)
        return int(stat.size or 0)

    def version(self, key: str) -> str:
        stat = self._guard(self.client.stat_object, self.bucket, check_key(key), key=key)
        return f"{int(stat.size or 0)}-{(stat.etag or '').strip(chr(34))}"

    def list(self, prefix: str = "") -> Iterator[str]:
        def names() -> list[str]:  # list_objects is lazy: iterate inside the guard
            objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(o.object_name for o in objects if o.object_name)

        yield from self._guard(names)

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

    def upload_url(self, key: str, expires_s: int = 3600) -> str:
        return str(
            self._guard(
                self.signer.presigned_put_object,
                self.bucket,
                check_key(key),
                expires=timedelta(seconds=expires_s),
                key=key,
            )
        )
