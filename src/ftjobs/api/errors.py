"""The one error hierarchy every layer raises into: retriable, permanent, not found.

Each adapter subclasses these with what it knows (the Kubernetes adapter's status and
reason, the storage adapter's URI and S3 code), so a caller can branch on the meaning
(`except NotFound`, `error.retriable`) without knowing which adapter failed, and the
trainer turns any of them into its exit code the same way (docs/failure-handling.md).
"""

from __future__ import annotations


class FtjobsError(Exception):
    """An error ftjobs raised on purpose.

    `retriable` says whether a new try can succeed; `delay` is how long to wait before
    it (seconds). Subclasses whose retriability is known only per instance (a storage
    error decided from the server's code) set `retriable` on the instance.
    """

    retriable: bool = False
    delay: float = 0.0


class RetriableError(FtjobsError):
    """Transient: the same call, or a new attempt, can succeed later."""

    retriable = True
    delay = 1.0


class PermanentError(FtjobsError):
    """Retrying fails the same way (a bad spec, a missing model, no permission)."""

    retriable = False


class NotFound(PermanentError):
    """The thing named does not exist; waiting will not create it."""
