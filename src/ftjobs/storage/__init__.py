"""The one adapter that talks to object storage: one backend per URI scheme
(storage.backends: s3:// through boto3, file://).

    store = open_store("s3://bucket/out/ns/job")           # or file:///tmp/out/ns/job
    checkpoints = CheckpointStore(store.child("checkpoints"), keep=3)
    with BackgroundUploader(checkpoints) as uploader:
        uploader.submit(step, local_dir)                   # returns at once
    checkpoints.fetch_latest(scratch)                      # resume: newest verified step

Only this package imports the storage client libraries (boto3/botocore, s3fs; an
import-linter contract); everything else uses this interface. Credentials come only from
the environment, through each client's default chain, and never appear in messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftjobs.storage.backends import (
    SCHEMES,
    Access,
    backend,
    failure_from,
    fsspec_options,
    is_remote,
    options_for,
    scheme_of,
)
from ftjobs.storage.base import ObjectInfo, ObjectStore, TransferSettings
from ftjobs.storage.checkpoints import LATEST, CheckpointStore, step_dir
from ftjobs.storage.errors import (
    CorruptObject,
    IncompleteCheckpoint,
    ObjectNotFound,
    StorageError,
)
from ftjobs.storage.jsonl import JsonlWriter, append_jsonl, read_jsonl
from ftjobs.storage.local import LocalStore
from ftjobs.storage.manifest import MANIFEST, FileEntry, Manifest, download_dir, upload_dir
from ftjobs.storage.options import datasets_storage_options, resolve_endpoint, resolve_region
from ftjobs.storage.uploader import BackgroundUploader
from ftjobs.storage.uri import parse_uri

if TYPE_CHECKING:
    from ftjobs.api.spec import Storage

__all__ = [
    "LATEST",
    "MANIFEST",
    "SCHEMES",
    "BackgroundUploader",
    "CheckpointStore",
    "CorruptObject",
    "FileEntry",
    "IncompleteCheckpoint",
    "JsonlWriter",
    "LocalStore",
    "Manifest",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "TransferSettings",
    "append_jsonl",
    "backend",
    "datasets_storage_options",
    "download_dir",
    "failure_from",
    "fsspec_options",
    "is_remote",
    "open_store",
    "options_for",
    "parse_uri",
    "read_jsonl",
    "resolve_endpoint",
    "resolve_region",
    "scheme_of",
    "step_dir",
    "upload_dir",
]


def open_store(
    uri: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    transfer: TransferSettings | None = None,
    storage: Storage | None = None,
) -> ObjectStore:
    """An ObjectStore rooted at `uri` (scheme://bucket/prefix or file:///path), by the
    backend registered for its scheme (storage.backends).

    `storage` (a spec's spec.storage) gives each backend its own settings, so one job can
    read s3:// and write another scheme; `endpoint`/`region` override them for `uri`'s
    backend. For s3: the endpoint is that, else AWS_ENDPOINT_URL(_S3), else AWS itself.
    Credentials come from each client's default chain (environment, web identity,
    instance profile), never from arguments. A backend's client library is imported
    only for its URIs, so a file:// run never pays for boto3.
    """
    parsed = parse_uri(uri)
    found = backend(parsed.scheme)
    access = found.access(storage)
    if endpoint is not None or region is not None:
        access = Access(endpoint or access.endpoint, region or access.region)
    return found.open(parsed, access, transfer or TransferSettings())
