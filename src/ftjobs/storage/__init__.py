"""The one adapter that talks to object storage (s3:// through boto3, and file://).

    store = open_store("s3://bucket/out/ns/job")           # or file:///tmp/out/ns/job
    checkpoints = CheckpointStore(store.child("checkpoints"), keep=3)
    with BackgroundUploader(checkpoints) as uploader:
        uploader.submit(step, local_dir)                   # returns at once
    checkpoints.fetch_latest(scratch)                      # resume: newest verified step

Only this package imports boto3/botocore (an import-linter contract); everything else
uses this interface. Credentials come only from the environment, through boto3's
default chain, and never appear in messages.
"""

from __future__ import annotations

from ftjobs.storage.base import ObjectInfo, ObjectStore, TransferSettings
from ftjobs.storage.checkpoints import LATEST, CheckpointStore, step_dir
from ftjobs.storage.errors import (
    CorruptObject,
    IncompleteCheckpoint,
    NotFound,
    StorageError,
)
from ftjobs.storage.jsonl import JsonlWriter, append_jsonl, read_jsonl
from ftjobs.storage.local import LocalStore
from ftjobs.storage.manifest import MANIFEST, FileEntry, Manifest, download_dir, upload_dir
from ftjobs.storage.options import datasets_storage_options, resolve_endpoint, resolve_region
from ftjobs.storage.uploader import BackgroundUploader
from ftjobs.storage.uri import parse_uri

__all__ = [
    "LATEST",
    "MANIFEST",
    "BackgroundUploader",
    "CheckpointStore",
    "CorruptObject",
    "FileEntry",
    "IncompleteCheckpoint",
    "JsonlWriter",
    "LocalStore",
    "Manifest",
    "NotFound",
    "ObjectInfo",
    "ObjectStore",
    "StorageError",
    "TransferSettings",
    "append_jsonl",
    "datasets_storage_options",
    "download_dir",
    "open_store",
    "parse_uri",
    "read_jsonl",
    "resolve_endpoint",
    "resolve_region",
    "step_dir",
    "upload_dir",
]


def open_store(
    uri: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    transfer: TransferSettings | None = None,
) -> ObjectStore:
    """An ObjectStore rooted at `uri` (s3://bucket/prefix or file:///path).

    For s3: the endpoint is `endpoint`, else AWS_ENDPOINT_URL(_S3), else AWS itself;
    credentials come from boto3's default chain (environment, web identity, instance
    profile), never from arguments. boto3 is imported only for s3:// URIs, so a
    file:// run never pays for it.
    """
    parsed = parse_uri(uri)
    if parsed.scheme == "file":
        assert parsed.path is not None
        return LocalStore(parsed.path)
    from ftjobs.storage.s3 import S3Store, make_client

    settings = transfer or TransferSettings()
    client = make_client(resolve_endpoint(endpoint), resolve_region(region), settings)
    return S3Store(client, parsed.bucket, parsed.prefix, settings)
