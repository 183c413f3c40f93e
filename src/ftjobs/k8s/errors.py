"""The adapter's error taxonomy: every API failure is either retriable (with a delay) or not.

Callers never see a kubernetes-client or urllib3 exception: `classify_status` and
`from_exception` turn them into these, and the controller's handlers map them onto
kopf's TemporaryError / PermanentError semantics (retry after `delay`, or give up).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any


class KubeError(Exception):
    """An API call failed."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class RetriableError(KubeError):
    """Transient: the same call can succeed later (throttling, conflicts, outages)."""

    def __init__(self, status: int, reason: str, message: str, delay: float = 1.0) -> None:
        super().__init__(status, reason, message)
        self.delay = delay


class PermanentError(KubeError):
    """Retrying the same call will fail the same way (invalid object, forbidden)."""


class NotFound(PermanentError):
    pass


class AlreadyExists(PermanentError):
    pass


class Conflict(RetriableError):
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
        return NotFound(status, reason or "NotFound", message)
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
        return RetriableError(status, reason or "ServerError", message, delay=delay)
    return PermanentError(status, reason or "Invalid", message)


def connection_error(exc: BaseException) -> RetriableError:
    """The API server could not be reached at all."""
    return RetriableError(0, "Unreachable", f"{type(exc).__name__}: {exc}", delay=2.0)
