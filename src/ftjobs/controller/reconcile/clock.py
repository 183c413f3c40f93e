"""The restart backoff (timestamps: ftjobs.api.timestamps)."""

from __future__ import annotations


def backoff_delay(backoff_seconds: int, max_backoff_seconds: int, restarts: int) -> int:
    """Delay before attempt `restarts + 2`: backoff_seconds doubling, capped."""
    return int(min(backoff_seconds * (2 ** min(restarts, 30)), max_backoff_seconds))
