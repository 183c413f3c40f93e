"""Prometheus metrics of the controller, served on /metrics (prometheus-client)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from ftjobs.api.status import Phase

JOBS_BY_PHASE = Gauge(
    "ftjobs_finetunejobs", "FineTuneJobs known to this controller, by phase", ["phase"]
)
RECONCILE_SECONDS = Histogram(
    "ftjobs_reconcile_duration_seconds",
    "Time of one reconcile (read, plan, act)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILES = Counter("ftjobs_reconciles_total", "Reconciles, by result", ["result"])
RESTARTS = Counter("ftjobs_restarts_total", "Retriable failures that started a new attempt")
TRANSITIONS = Counter("ftjobs_transitions_total", "Phase transitions, by new phase", ["phase"])
API_REQUESTS = Counter(
    "ftjobs_api_requests_total",
    "Kubernetes API requests, by verb and resource",
    ["verb", "resource"],
)
API_ERRORS = Counter(
    "ftjobs_api_errors_total", "Kubernetes API errors, by class and reason", ["kind", "reason"]
)
QUEUE_WAIT_SECONDS = Histogram(
    "ftjobs_queue_wait_seconds",
    "Time an attempt waited in its Kueue queue before admission",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400),
)
LEADER = Gauge("ftjobs_leader", "1 while this replica holds the leader lease")


class PhaseBook:
    """The last phase seen per FineTuneJob, exported as the by-phase gauge."""

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], str] = {}

    def set(self, key: tuple[str, str], phase: str | None) -> None:
        if phase is None:
            self._phases.pop(key, None)
        else:
            self._phases[key] = phase
        self._export()

    def _export(self) -> None:
        counts = Tally(self._phases.values())
        for phase in Phase:
            JOBS_BY_PHASE.labels(phase.value).set(counts.get(phase.value, 0))


def serve(port: int) -> None:
    """Start the /metrics HTTP server in a daemon thread (port 0: do not serve)."""
    if port:
        start_http_server(port)
