"""The `s3://` backend over boto3 (the only boto3/botocore importer in ftjobs).

What boto3 already does well is used as is: the default credential chain (environment,
web identity, instance profile; never credentials passed in code or taken from a spec),
botocore's retries with exponential backoff, and s3transfer's concurrent multipart
uploads and ranged downloads. This module adds the sha256 of every upload, S3-style
errors mapped to the storage taxonomy, and settings that suit S3-compatible servers.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ftjobs.storage.backends import Access
from ftjobs.storage.base import HashingReader, ObjectInfo, TransferSettings, download_whole
from ftjobs.storage.errors import ObjectNotFound, StorageError
from ftjobs.storage.failures import (
    NETWORK,
    NO_SUCH_BUCKET,
    NO_SUCH_OBJECT,
    FailureClass,
    exception_class,
)
from ftjobs.storage.options import datasets_storage_options, resolve_endpoint, resolve_region
from ftjobs.storage.uri import StoreURI, as_dir, check_key

if TYPE_CHECKING:
    from ftjobs.api.spec import Storage

# S3 refuses more than 10,000 parts; keep a margin when sizing parts for huge files.
_MAX_PARTS = 9_000


def transfer_config(settings: TransferSettings, size: int | None = None) -> TransferConfig:
    """boto3's TransferConfig for `settings`, with parts grown for files over 9,000 parts."""
    chunk = settings.chunk_size
    if size is not None:
        chunk = max(chunk, math.ceil(size / _MAX_PARTS))
    config = TransferConfig(
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=chunk,
        max_concurrency=settings.max_concurrency,
        use_threads=True,
    )
    # Uploads read their parts from a stream (to hash them) into memory; one buffer per
    # worker bounds an upload's memory to max_concurrency * chunk. (An s3transfer setting
    # that boto3's constructor does not take.)
    config.max_in_memory_upload_chunks = settings.max_concurrency
    return config


def make_client(endpoint: str | None, region: str, settings: TransferSettings) -> Any:
    """A boto3 S3 client with ftjobs' settings; credentials from boto3's default chain."""
    config = Config(
        region_name=region,
        # total_max_attempts counts the first try; botocore's "max_attempts" would not.
        retries={"total_max_attempts": settings.max_attempts, "mode": settings.retry_mode},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # upload_dir runs file uploads and multipart workers side by side; a pool
        # smaller than the threads makes botocore discard and reopen connections.
        max_pool_connections=max(32, 2 * settings.max_concurrency),
        # A custom endpoint is an S3-compatible server (MinIO, versitygw, Ceph...), which
        # rarely has wildcard DNS for virtual-host buckets.
        s3={"addressing_style": "path" if endpoint else "auto"},
        # Integrity is end to end (sha256 in every manifest, checked on download); the
        # newer default CRC trailers are refused by several S3-compatible servers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint, config=config)


class S3Store:
    """An ObjectStore over `s3://bucket/prefix`."""

    def __init__(self, client: Any, bucket: str, prefix: str, settings: TransferSettings) -> None:
        # boto3 clients are generated at run time; there is nothing for mypy to check.
        self._s3: Any = client
        self.bucket = bucket
        self.prefix = prefix
        self.settings = settings
        self.uri = f"s3://{bucket}/{prefix}".rstrip("/")

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Map boto errors to the taxonomy (storage.failures decides retriable or not).

        The message names the URI, the S3 code and, for a permanent failure, the endpoint
        and what to check; never a credential. The original exception is not chained
        (`from None`): botocore's response dicts can carry the access key id (e.g.
        SignatureDoesNotMatch), and a chained traceback ends up in logs.
        """
        uri = self.url(key)
        try:
            yield
        except (
            botocore.exceptions.ClientError,
            botocore.exceptions.BotoCoreError,
            boto3.exceptions.Boto3Error,
        ) as e:
            raise self._failure(action, uri, e) from None

    def _failure(self, action: str, uri: str, error: BaseException) -> StorageError:
        found = exception_class(error)
        row, code = found if found is not None else (NETWORK, "")
        if isinstance(error, botocore.exceptions.ClientError):
            message = str(error.response.get("Error", {}).get("Message", "")) or code
        else:
            message = str(error)
        endpoint = self._s3.meta.endpoint_url
        if row in (NO_SUCH_BUCKET, NO_SUCH_OBJECT):
            # By code, not by status: some servers answer 404 for an unknown access key
            # (versitygw: XAdminUserNotFound), which is no missing object.
            kind = "bucket" if row is NO_SUCH_BUCKET else "object"
            text = f"{action} {uri}: no such {kind}"
            if row is NO_SUCH_BUCKET:
                text += f" (bucket {self.bucket!r} at {endpoint}; {row.advice})"
            return ObjectNotFound(text, uri=uri, code=code, failure=row.name)
        if row.retriable:
            text = f"{action} {uri} failed: {code + ' ' if code else ''}{message}"
        else:
            text = (
                f"{action} {uri} failed: {code or row.name}: {row.cause} "
                f"(bucket {self.bucket!r} at {endpoint}; {row.advice})"
            )
        return StorageError(text, uri=uri, code=code, retriable=row.retriable, failure=row.name)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        with self._errors("put", key):
            self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        try:
            size = path.stat().st_size
            src = path.open("rb")
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror}", uri=self.url(key)) from None
        with src:
            if size < self.settings.multipart_threshold:
                # One request; bytes in memory let botocore's retries resend them.
                return self.put_bytes(key, src.read())
            reader = HashingReader(src)
            with self._errors("upload", key):
                self._s3.upload_fileobj(
                    reader,
                    self.bucket,
                    self._key(key),
                    Config=transfer_config(self.settings, size),
                )
        return ObjectInfo(key, reader.size, reader.hexdigest())

    def get_bytes(self, key: str) -> bytes:
        with self._errors("get", key):
            response = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
            data: bytes = response["Body"].read()
            return data

    def get_file(self, key: str, path: Path) -> None:
        def download(tmp: str) -> None:
            with self._errors("download", key):
                self._s3.download_file(
                    self.bucket, self._key(key), tmp, Config=transfer_config(self.settings)
                )

        download_whole(path, download)

    def exists(self, key: str) -> bool:
        # HEAD answers carry no body, so a missing bucket also reads as a bare 404 here;
        # the next get/put/list names it (NoSuchBucket).
        try:
            with self._errors("head", key):
                self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFound:
            return False
        return True

    def sizes(self, prefix: str = "") -> dict[str, int]:
        check_key(prefix, allow_empty=True)
        out: dict[str, int] = {}
        with self._errors("list", prefix):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) :]
                    # Zero-byte "folder" markers made by consoles and other tools.
                    if key and not key.endswith("/"):
                        out[key] = int(obj["Size"])
        return dict(sorted(out.items()))

    def list(self, prefix: str = "") -> list[str]:
        return list(self.sizes(prefix))

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = keys[start : start + 1000]
            with self._errors("delete", prefix):
                response = self._s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + k} for k in batch], "Quiet": True},
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StorageError(
                    f"delete {self.url(first['Key'][len(self.prefix) :])} failed: "
                    f"{first.get('Code', '')} {first.get('Message', '')}",
                    uri=self.url(prefix),
                    code=str(first.get("Code", "")),
                )
        return len(keys)

    def child(self, prefix: str) -> S3Store:
        check_key(prefix.rstrip("/"))
        return S3Store(self._s3, self.bucket, self.prefix + as_dir(prefix), self.settings)

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r})"


_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


class S3Backend:
    """The s3:// scheme for the registry (storage.backends): spec.storage.endpoint and
    .region, boto3 for objects, s3fs for `datasets`, botocore's errors."""

    scheme = "s3"

    def access(self, storage: Storage | None) -> Access:
        if storage is None:
            return Access()
        return Access(str(storage.endpoint) if storage.endpoint else None, storage.region)

    def open(self, uri: StoreURI, access: Access, transfer: TransferSettings) -> S3Store:
        client = make_client(
            resolve_endpoint(access.endpoint), resolve_region(access.region), transfer
        )
        return S3Store(client, uri.bucket, uri.prefix, transfer)

    def fsspec_options(self, access: Access, transfer: TransferSettings) -> dict[str, Any]:
        return datasets_storage_options(access.endpoint, access.region, transfer)

    def classify(self, error: BaseException) -> tuple[FailureClass, str] | None:
        return exception_class(error)

    def server(self, options: Mapping[str, Any]) -> str:
        endpoint = options.get("client_kwargs", {}).get("endpoint_url")
        return f"endpoint {endpoint or 'AWS S3'}"

    @contextlib.contextmanager
    def credentials(self, values: Mapping[str, str]) -> Iterator[None]:
        """The Secret's keys in the environment (boto3's default chain) for the block only;
        a profile or session token of the caller's own would otherwise mix in."""
        if not values:
            yield
            return
        saved = {k: os.environ.get(k) for k in _CREDENTIAL_ENV}
        try:
            os.environ.pop("AWS_PROFILE", None)
            os.environ.pop("AWS_SESSION_TOKEN", None)
            os.environ.update(values)
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


BACKEND = S3Backend()
