"""The adapter's error taxonomy: every API failure is either retriable (with a delay) or not.

Callers never see a kubernetes-client or urllib3 exception: `classify_status` and
`from_exception` turn them into these, and the controller's handlers map them onto
kopf's TemporaryError / PermanentError semantics (retry after `delay`, or give up).
Each is a `KubeError` (status, reason) and one of `ftjobs.api.errors`' classes
(`RetriableError`, `PermanentError`, `NotFound`), the one hierarchy of the project.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ftjobs.api.errors import FtjobsError, NotFound, PermanentError, RetriableError


class KubeError(FtjobsError):
    """An API call failed; `status` and `reason` come from the server's Status."""

    def __init__(self, status: int, reason: str, message: str, delay: float = 0.0) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.delay = delay


class KubeRetriable(KubeError, RetriableError):
    """Transient: the same call can succeed later (throttling, conflicts, outages)."""

    def __init__(self, status: int, reason: str, message: str, delay: float = 1.0) -> None:
        super().__init__(status, reason, message, delay)


class KubePermanent(KubeError, PermanentError):
    """Retrying the same call will fail the same way (invalid object, forbidden)."""


class KubeNotFound(KubeError, NotFound):
    """The resource (or its namespace) does not exist."""


class AlreadyExists(KubePermanent):
    """A create found an object of that name."""


class Conflict(KubeRetriable):
    """A stale resourceVersion: read again and retry at once."""


def classify_status(status: int, body: bytes | str | None, headers: Any = None) -> KubeError:
    """Build the right error from an HTTP status and a Kubernetes Status body."""
    reason, message = "", ""
    try:
        doc = json.loads(body or b"{}")
        reason = str(doc.get("reason", ""))
        message = str(doc.get("message", ""))
    except (ValueError, AttributeError):
        message = (body.decode(errors="replace") if isinstance(body, bytes) else body or "")[:500]
    if status == 404:
        return KubeNotFound(status, reason or "NotFound", message)
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(status, reason, message)
    if status == 409:
        return Conflict(status, reason or "Conflict", message, delay=0.2)
    if status == 429 or status >= 500 or status == 0:
        delay = 1.0
        retry_after = headers.get("Retry-After") if headers is not None else None
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = float(retry_after)
        return KubeRetriable(status, reason or "ServerError", message, delay=delay)
    return KubePermanent(status, reason or "Invalid", message)


def connection_error(exc: BaseException, host: str | None = None) -> KubeRetriable:
    """The API server could not be reached at all (urllib3's retry wrapper peeled off)."""
    where = f" at {host}" if host else ""
    message = f"cannot reach the Kubernetes API server{where}: {_why_unreachable(exc)}"
    return KubeRetriable(0, "Unreachable", message, delay=2.0)


def _why_unreachable(exc: BaseException) -> str:
    """A short cause a user can act on, instead of urllib3's nested repr."""
    seen: BaseException | None = exc
    chain: list[BaseException] = []
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if not isinstance(seen, BaseException):
            break
    names = " ".join(type(e).__name__ for e in chain).lower()
    text = " ".join(str(e) for e in chain).lower()
    if "refused" in text or "connectionrefused" in names:
        return "connection refused (is the cluster running?)"
    if "name or service not known" in text or "nameresolution" in names or "gaierror" in names:
        return "host name not found"
    if "timeout" in names or "timed out" in text:
        return "timed out"
    if "ssl" in names or "certificate" in text:
        return "TLS failed (certificate or CA does not match the server)"
    return type(chain[-1]).__name__
