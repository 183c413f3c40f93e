"""Kubernetes timestamps: the one place their text format is written down.

`metav1.Time` (conditions, status fields, annotations the controller reads) is RFC 3339
in UTC to the second with a `Z`; `metav1.MicroTime` (Lease renew/acquire times) has
microseconds. Everything ftjobs writes into an object, and the progress records that
end up there, use these, so `parse_time` reads back all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime

_TIME = "%Y-%m-%dT%H:%M:%SZ"
_MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(t: datetime) -> str:
    """`t` as a Kubernetes `Time` (`2026-01-02T03:04:05Z`); naive `t` is taken as local."""
    return t.astimezone(UTC).strftime(_TIME)


def format_micro_time(t: datetime) -> str:
    """`t` as a Kubernetes `MicroTime` (`2026-01-02T03:04:05.123456Z`)."""
    return t.astimezone(UTC).strftime(_MICRO_TIME)


def now_time() -> str:
    """The current time as a Kubernetes `Time`."""
    return format_time(datetime.now(UTC))


def parse_time(text: str) -> datetime:
    """A `Time` or `MicroTime` (or any RFC 3339 time) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
