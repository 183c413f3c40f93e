"""A client-side request rate limit (token bucket), as client-go's `--kube-api-qps` and
`--kube-api-burst` give kube-controller-manager.

A busy controller must not flood a shared API server; and a benchmark against
kube-controller-manager is only fair when both sides run under the same limit.
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """`qps` requests a second on average, up to `burst` at once; `take` blocks until one
    request may go."""

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1
            # A negative balance is the queue of callers ahead: this one waits its turn.
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait
