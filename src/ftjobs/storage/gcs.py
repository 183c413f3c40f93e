"""The `gs://` backend (Google Cloud Storage) over google-cloud-storage, and gcsfs for
`datasets` (the only importer of google.cloud.storage/gcsfs in ftjobs).

Where the server is: spec.storage.gcs.endpoint, else STORAGE_EMULATOR_HOST, else Google.
Who the client is: the service-account key file GOOGLE_APPLICATION_CREDENTIALS names (the
pod mounts it from spec.storage.gcs.credentialsSecret), else Application Default
Credentials (GKE Workload Identity, the metadata server); with an endpoint and no key
file, anonymous (an emulator such as fake-gcs-server). Never credentials from arguments.

Messages carry the URI, the HTTP status and the failure class's advice, never a client
library's own text (a refresh error can quote the token endpoint's answer) and never the
exception chained (`from None`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google.api_core.exceptions as api_errors
import google.auth.exceptions as auth_errors
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs
from google.cloud.storage.retry import DEFAULT_RETRY

from ftjobs.api.storage import SERVICE_ACCOUNT_KEY
from ftjobs.storage.backends import Access
from ftjobs.storage.base import ObjectInfo, TransferSettings, sha256_file
from ftjobs.storage.errors import ObjectNotFound, StorageError
from ftjobs.storage.failures import (
    ACCESS_DENIED,
    NETWORK,
    NO_CREDENTIALS,
    NO_SUCH_BUCKET,
    NO_SUCH_OBJECT,
    UNKNOWN_KEY,
    FailureClass,
    class_of_code,
)
from ftjobs.storage.uri import StoreURI, as_dir, check_key

if TYPE_CHECKING:
    from ftjobs.api.spec import Storage

CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
GOOGLE = "Google Cloud Storage"


def resolve_endpoint(endpoint: str | None = None) -> str | None:
    """The spec's endpoint, else STORAGE_EMULATOR_HOST (with http:// added when bare)."""
    found = endpoint or os.environ.get(EMULATOR_ENV) or None
    if found and "://" not in found:
        found = "http://" + found
    return found.rstrip("/") if found else None


def _anonymous(endpoint: str | None) -> bool:
    # An endpoint of its own and no key file: an emulator, which takes no credentials.
    return endpoint is not None and not os.environ.get(CREDENTIALS_ENV)


def make_client(endpoint: str | None) -> gcs.Client:
    """A google-cloud-storage client for `endpoint` (None: Google's)."""
    project = os.environ.get(PROJECT_ENV) or None
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    if _anonymous(endpoint):
        return gcs.Client(
            project=project or "ftjobs",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=options,
        )
    return gcs.Client(project=project, client_options=options)


def classify(error: BaseException) -> tuple[FailureClass, str] | None:
    """(row, code) for an exception from google-cloud-storage, google-auth, gcsfs or the
    HTTP layers under them (looking through its causes); None when it is no storage
    failure."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _classify_one(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _classify_one(error: BaseException) -> tuple[FailureClass, str] | None:
    if isinstance(error, api_errors.GoogleAPICallError):
        status = int(error.code) if error.code else None
        code = f"HTTP {status}" if status else type(error).__name__
        if status == 404:
            return (_missing(str(error.message)), code)
        if status == 403:
            return ACCESS_DENIED, code
        if status == 401:
            return UNKNOWN_KEY, code
        return class_of_code(str(status or ""), status), code
    if isinstance(error, auth_errors.DefaultCredentialsError):
        return NO_CREDENTIALS, ""
    if isinstance(error, auth_errors.RefreshError):
        return UNKNOWN_KEY, "RefreshError"
    status = getattr(error, "code", None)  # gcsfs.retry.HttpError
    if type(error).__module__.startswith("gcsfs") and isinstance(status, int):
        if status == 404:
            return _missing(str(error)), f"HTTP {status}"
        if status in (401, 403):
            return (ACCESS_DENIED if status == 403 else UNKNOWN_KEY), f"HTTP {status}"
        return class_of_code(str(status), status), f"HTTP {status}"
    if isinstance(error, FileNotFoundError):  # gcsfs: 404 on a read
        return NO_SUCH_OBJECT, "HTTP 404"
    if isinstance(error, PermissionError):
        return ACCESS_DENIED, ""
    top = type(error).__module__.split(".")[0]
    if isinstance(error, (ConnectionError, TimeoutError)) or top in (
        "aiohttp",
        "urllib3",
        "requests",
    ):
        return NETWORK, ""
    return None


def _missing(message: str) -> FailureClass:
    return NO_SUCH_BUCKET if "bucket" in message.lower() else NO_SUCH_OBJECT


class GcsStore:
    """An ObjectStore over `gs://bucket/prefix`."""

    def __init__(
        self, client: gcs.Client, bucket: str, prefix: str, settings: TransferSettings
    ) -> None:
        self._client = client
        self._bucket = client.bucket(bucket)
        self.bucket = bucket
        self.prefix = prefix
        self.settings = settings
        self.uri = f"gs://{bucket}/{prefix}".rstrip("/")
        # Google's retry policy (backoff with jitter) for every call, bounded in time by
        # the read timeout times the attempts, like botocore's for s3://.
        self._retry: Retry = DEFAULT_RETRY.with_timeout(
            settings.read_timeout_s * settings.max_attempts
        )
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)

    def url(self, key: str) -> str:
        return f"gs://{self.bucket}/{self.prefix}{key}"

    def _blob(self, key: str) -> gcs.Blob:
        blob = self._bucket.blob(self.prefix + check_key(key))
        blob.chunk_size = self.settings.chunk_size  # resumable uploads in these parts
        return blob

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        uri = self.url(key)
        try:
            yield
        except StorageError:
            raise
        except Exception as e:
            found = classify(e)
            if found is None:
                raise
            raise self._failure(action, uri, found) from None

    def _failure(self, action: str, uri: str, found: tuple[FailureClass, str]) -> StorageError:
        row, code = found
        server = self._client._connection.API_BASE_URL
        if row in (NO_SUCH_BUCKET, NO_SUCH_OBJECT):
            kind = "bucket" if row is NO_SUCH_BUCKET else "object"
            text = f"{action} {uri}: no such {kind}"
            if row is NO_SUCH_BUCKET:
                text += f" (bucket {self.bucket!r} at {server}; {row.advice})"
            return ObjectNotFound(text, uri=uri, code=code, failure=row.name)
        text = f"{action} {uri} failed: {code or row.name}: {row.cause}"
        if not row.retriable:
            text += f" (bucket {self.bucket!r} at {server}; {row.advice})"
        return StorageError(text, uri=uri, code=code, retriable=row.retriable, failure=row.name)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        with self._errors("put", key):
            self._blob(key).upload_from_string(
                data, retry=self._retry, timeout=self._timeout, checksum="crc32c"
            )
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        try:
            size, digest = sha256_file(path)
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror}", uri=self.url(key)) from None
        with self._errors("upload", key):
            # Resumable upload in chunk_size parts from the threshold up; GCS checks each
            # upload's crc32c, the manifest's sha256 is checked on every download.
            self._blob(key).upload_from_filename(
                str(path), retry=self._retry, timeout=self._timeout, checksum="crc32c"
            )
        return ObjectInfo(key, size, digest)

    def get_bytes(self, key: str) -> bytes:
        with self._errors("get", key):
            data: bytes = self._blob(key).download_as_bytes(
                retry=self._retry, timeout=self._timeout
            )
            return data

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Download next to the target and rename, so `path` is never half written.
        fd, tmp = tempfile.mkstemp(prefix=".ftjobs-tmp-", dir=path.parent)
        os.close(fd)
        try:
            with self._errors("download", key):
                self._blob(key).download_to_filename(tmp, retry=self._retry, timeout=self._timeout)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        with self._errors("head", key):
            return bool(self._blob(key).exists(retry=self._retry, timeout=self._timeout))

    def sizes(self, prefix: str = "") -> dict[str, int]:
        check_key(prefix, allow_empty=True)
        out: dict[str, int] = {}
        with self._errors("list", prefix):
            blobs = self._client.list_blobs(
                self.bucket, prefix=self.prefix + prefix, retry=self._retry, timeout=self._timeout
            )
            for blob in blobs:
                key = blob.name[len(self.prefix) :]
                if key and not key.endswith("/"):  # console "folder" placeholders
                    out[key] = int(blob.size or 0)
        return dict(sorted(out.items()))

    def list(self, prefix: str = "") -> list[str]:
        return list(self.sizes(prefix))

    def delete(self, key: str) -> None:
        with contextlib.suppress(ObjectNotFound), self._errors("delete", key):
            self._blob(key).delete(retry=self._retry, timeout=self._timeout)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def child(self, prefix: str) -> GcsStore:
        check_key(prefix.rstrip("/"))
        return GcsStore(self._client, self.bucket, self.prefix + as_dir(prefix), self.settings)

    def __repr__(self) -> str:
        return f"GcsStore({self.uri!r})"


def _use_core_filesystem() -> None:
    """Read gs:// through gcsfs' GCSFileSystem (JSON API only). gcsfs >= 2026.8 registers
    an experimental subclass that first asks the Storage Control gRPC API for each bucket's
    layout; an emulator or private endpoint has no such API, so every file open waited for
    its 60 s timeout before falling back to the same JSON API calls."""
    import fsspec
    from gcsfs.core import GCSFileSystem

    for protocol in ("gs", "gcs"):
        fsspec.register_implementation(protocol, GCSFileSystem, clobber=True)


class GcsBackend:
    """The gs:// scheme for the registry (storage.backends): spec.storage.gcs."""

    scheme = "gs"

    def access(self, storage: Storage | None) -> Access:
        gcs_spec = storage.gcs if storage is not None else None
        endpoint = gcs_spec.endpoint if gcs_spec is not None else None
        return Access(str(endpoint) if endpoint else None)

    def open(self, uri: StoreURI, access: Access, transfer: TransferSettings) -> GcsStore:
        client = make_client(resolve_endpoint(access.endpoint))
        return GcsStore(client, uri.bucket, uri.prefix, transfer)

    def fsspec_options(self, access: Access, transfer: TransferSettings) -> dict[str, Any]:
        """gcsfs options: a NEW dict each call (`datasets` mutates it)."""
        _use_core_filesystem()
        endpoint = resolve_endpoint(access.endpoint)
        options: dict[str, Any] = {"requests_timeout": transfer.read_timeout_s}
        if endpoint:
            options["endpoint_url"] = endpoint
        if project := os.environ.get(PROJECT_ENV):
            options["project"] = project
        key_file = os.environ.get(CREDENTIALS_ENV)
        if key_file:
            options["token"] = key_file  # gcsfs reads the service-account file itself
        elif _anonymous(endpoint):
            options["token"] = "anon"
        else:
            options["token"] = "google_default"
        return options

    def classify(self, error: BaseException) -> tuple[FailureClass, str] | None:
        return classify(error)

    def server(self, options: Mapping[str, Any]) -> str:
        endpoint = options.get("endpoint_url")
        return f"endpoint {endpoint}" if endpoint else GOOGLE

    @contextlib.contextmanager
    def credentials(self, values: Mapping[str, str]) -> Iterator[None]:
        """The Secret's service-account JSON as GOOGLE_APPLICATION_CREDENTIALS for the
        block only: written to a private temporary file, removed afterwards."""
        key = values.get(SERVICE_ACCOUNT_KEY)
        if not key:
            yield
            return
        saved = os.environ.get(CREDENTIALS_ENV)
        with tempfile.TemporaryDirectory(prefix="ftjobs-gcs-") as folder:
            path = Path(folder) / SERVICE_ACCOUNT_KEY
            path.touch(mode=0o600)
            path.write_text(key)
            os.environ[CREDENTIALS_ENV] = str(path)
            try:
                yield
            finally:
                if saved is None:
                    os.environ.pop(CREDENTIALS_ENV, None)
                else:
                    os.environ[CREDENTIALS_ENV] = saved


BACKEND = GcsBackend()
