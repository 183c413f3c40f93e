"""The storage backends, one per URI scheme: the storage adapter's only list of schemes.

A backend owns everything scheme-specific on the storage side: opening an ObjectStore
for `scheme://bucket/prefix`, the fsspec `storage_options` that `datasets` streams
through, which of its client library's exceptions are retriable or permanent (rows of
storage.failures), how its server is named in messages, and how credentials read from a
Kubernetes Secret are handed to its client (preflight). The pod side of the same scheme
(environment, volumes, which Secret keys) is `ftjobs.render.schemes`; a unit test keeps
the two registries listing the same schemes.

Backend modules are imported when a URI of their scheme is first used, so a file:// run
never imports boto3. Adding a backend: one module exposing `BACKEND`, one line in
`_MODULES` (docs/architecture.md, "Add a storage backend").
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from ftjobs.storage.base import ObjectStore, TransferSettings
from ftjobs.storage.errors import ObjectNotFound, StorageError
from ftjobs.storage.failures import NO_SUCH_BUCKET, NO_SUCH_OBJECT, FailureClass

if TYPE_CHECKING:
    from ftjobs.api.spec import Storage
    from ftjobs.storage.uri import StoreURI

# scheme -> module exposing BACKEND. "file" is the local filesystem (no network).
_MODULES: dict[str, str] = {
    "file": "ftjobs.storage.local",
    "s3": "ftjobs.storage.s3",
    "gs": "ftjobs.storage.gcs",
}
LOCAL_SCHEME = "file"
SCHEMES: tuple[str, ...] = tuple(_MODULES)
REMOTE_SCHEMES: tuple[str, ...] = tuple(s for s in SCHEMES if s != LOCAL_SCHEME)


@dataclass(frozen=True)
class Access:
    """Where one backend's server is: the spec's settings for that scheme (None: the
    backend's own default, usually from the environment)."""

    endpoint: str | None = None
    region: str | None = None


class StorageBackend(Protocol):
    """What a scheme provides to the storage adapter."""

    scheme: str

    def access(self, storage: Storage | None) -> Access:
        """This backend's settings from spec.storage (None: environment defaults)."""
        ...

    def open(self, uri: StoreURI, access: Access, transfer: TransferSettings) -> ObjectStore:
        """An ObjectStore rooted at `uri`; credentials from the environment only."""
        ...

    def fsspec_options(self, access: Access, transfer: TransferSettings) -> dict[str, Any]:
        """A NEW `storage_options` dict for fsspec/`datasets` (they mutate what they get)."""
        ...

    def classify(self, error: BaseException) -> tuple[FailureClass, str] | None:
        """(row, server code) for an exception of this backend's libraries; None when it
        is no storage failure (bad data)."""
        ...

    def server(self, options: Mapping[str, Any]) -> str:
        """The server named in messages ("endpoint http://..." or the cloud's name), from
        this backend's fsspec options."""
        ...

    def credentials(self, values: Mapping[str, str]) -> AbstractContextManager[None]:
        """Use the credentials read from a Secret (its key -> value) for the block only."""
        ...


def scheme_of(uri: str) -> str:
    """The scheme of a store URI; a bare path is a local file path."""
    return urlparse(uri).scheme if "://" in uri else LOCAL_SCHEME


def is_remote(uri: str) -> bool:
    """Whether `uri` names objects behind one of the registered network backends."""
    return "://" in uri and scheme_of(uri) in REMOTE_SCHEMES


def backend(scheme: str) -> StorageBackend:
    """The backend registered for `scheme`; StorageError for any other."""
    module = _MODULES.get(scheme)
    if module is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise StorageError(f"unsupported storage scheme {scheme!r} (use {known})")
    found: StorageBackend = importlib.import_module(module).BACKEND
    return found


def fsspec_options(
    uri: str, *, storage: Storage | None = None, transfer: TransferSettings | None = None
) -> dict[str, Any]:
    """`storage_options` for reading `uri` with fsspec/`datasets`: a new dict each call,
    {} for local paths and for schemes no backend owns (hf://)."""
    if not is_remote(uri):
        return {}
    found = backend(scheme_of(uri))
    return found.fsspec_options(found.access(storage), transfer or TransferSettings())


def options_for(
    storage: Storage | None = None, transfer: TransferSettings | None = None
) -> Callable[[str], dict[str, Any]]:
    """The per-URI options callable `prepare_data` takes, for one spec.storage."""
    return lambda uri: fsspec_options(uri, storage=storage, transfer=transfer)


def call_options(options: Callable[..., dict[str, Any]], uri: str) -> dict[str, Any]:
    """A fresh copy of `options(uri)`. A callable without parameters (the older form,
    from when s3:// was the only remote scheme) gives the same options for every URI."""
    takes_uri = bool(inspect.signature(options).parameters)
    return dict(options(uri) if takes_uri else options())


def failure_from(
    error: BaseException, uri: str, options: Mapping[str, Any] | None = None
) -> StorageError | None:
    """The StorageError for an exception raised while reading `uri` through another
    library (fsspec under `datasets`), or None when it is no storage failure (bad data).

    The message names the URI and its server and, for a permanent failure, what to
    check; never the exception's own text, which can carry request details.
    """
    if not is_remote(uri):
        return None
    found_backend = backend(scheme_of(uri))
    found = found_backend.classify(error)
    if found is None:
        return None
    return describe_failure(found, error, uri, found_backend.server(options or {}))


def describe_failure(
    found: tuple[FailureClass, str], error: BaseException, uri: str, server: str
) -> StorageError:
    """The message and class for a classified read failure of `uri` at `server`."""
    row, code = found
    where = f"{uri} ({server})"
    if row.retriable:
        return StorageError(
            f"read {where} failed: {code or type(error).__name__}: {row.cause}",
            uri=uri,
            code=code,
            retriable=True,
            failure=row.name,
        )
    cls = ObjectNotFound if row in (NO_SUCH_BUCKET, NO_SUCH_OBJECT) else StorageError
    return cls(
        f"read {where} failed: {code or row.name}: {row.cause}; {row.advice}",
        uri=uri,
        code=code,
        retriable=False,
        failure=row.name,
    )
