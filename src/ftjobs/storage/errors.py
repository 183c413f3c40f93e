"""The storage error taxonomy.

Callers branch on the class, never on message text: `ObjectNotFound` (the object is
not there; also an `ftjobs.api.errors.NotFound`), `IncompleteCheckpoint` (a committed
directory lacks its manifest or a listed file), `CorruptObject` (a size or sha256 that
does not match the manifest), and the base `StorageError` for everything else (network,
permissions, bad URIs). `StorageError` is an `ftjobs.api.errors.FtjobsError`: its
`retriable` is decided per error by storage.failures.

Messages name the URI and the operation and never a credential: `redact` scrubs the
values of the AWS credential variables from any text that came back from a server or a
library, because an error message ends up in logs, Kubernetes events and the pod's
termination message.
"""

from __future__ import annotations

import os

from ftjobs.api.errors import FtjobsError, NotFound

# The variables boto3's default chain (and MLflow's client) read from the environment;
# their values must never reach a message.
_SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)


def redact(text: str) -> str:
    """Replace any credential value found in the environment by `***`."""
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        # Very short values would redact ordinary words; real keys are >= 16 chars.
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


class StorageError(FtjobsError):
    """Any failure of the object store; the message names the URI, never a credential.

    `retriable` says whether a new attempt can succeed (storage.failures decides it from
    the S3 code or the exception kind); `failure` names the row of that table.
    """

    retriable_default = True

    def __init__(
        self,
        message: str,
        *,
        uri: str = "",
        code: str = "",
        retriable: bool | None = None,
        failure: str = "",
    ) -> None:
        super().__init__(redact(message))
        self.uri = uri
        # The S3 error code (e.g. "AccessDenied") when there is one.
        self.code = code
        self.retriable = self.retriable_default if retriable is None else retriable
        self.failure = failure


class ObjectNotFound(StorageError, NotFound):
    """The object (or its bucket) does not exist; waiting will not create it."""

    retriable_default = False


class IncompleteCheckpoint(StorageError):
    """A committed directory has no MANIFEST.json, or a file the manifest lists is missing."""


class CorruptObject(StorageError):
    """An object's size or sha256 differs from what its manifest recorded."""
