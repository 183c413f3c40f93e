"""A client-side request rate limit (token bucket), as client-go's `--kube-api-qps` and
`--kube-api-burst` give kube-controller-manager.

A busy controller must not flood a shared API server; and a benchmark against
kube-controller-manager is only fair when both sides run under the same limit.
"""

from __future__ import annotations

import collections
import threading
import time


class TokenBucket:
    """`qps` requests a second on average, up to `burst` at once; `take` blocks until one
    request may go.

    Two priorities: a request that is not `urgent` waits while any urgent one waits, so
    when the limit binds (a burst of jobs) the writes that create the jobs' children go
    before the status patches and events that report on them. client-go's limiter has one
    queue; its controllers get the same order from separate clients for events.
    """

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._cond = threading.Condition()
        self._urgent: collections.deque[object] = collections.deque()

    def take(self, *, urgent: bool = True) -> float:
        """Wait for a token; returns the seconds waited. Urgent requests go in the order
        they came; the others go when no urgent one waits."""
        start = time.monotonic()
        waited = False
        ticket = object()
        with self._cond:
            if urgent:
                self._urgent.append(ticket)
            try:
                while True:
                    now = time.monotonic()
                    self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
                    self._last = now
                    turn = self._urgent[0] is ticket if urgent else not self._urgent
                    if self._tokens >= 1 and turn:
                        self._tokens -= 1
                        return time.monotonic() - start if waited else 0.0
                    # Until the next token, or until those ahead have taken theirs.
                    self._cond.wait((1 - self._tokens) / self.qps if self._tokens < 1 else 0.005)
                    waited = True
            finally:
                if urgent:
                    self._urgent.remove(ticket)
                    self._cond.notify_all()
