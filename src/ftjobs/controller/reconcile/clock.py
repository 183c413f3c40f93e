"""Timestamps in the Kubernetes format and the restart backoff."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def backoff_delay(backoff_seconds: int, max_backoff_seconds: int, restarts: int) -> int:
    """Delay before attempt `restarts + 2`: backoff_seconds doubling, capped."""
    return int(min(backoff_seconds * (2 ** min(restarts, 30)), max_backoff_seconds))
