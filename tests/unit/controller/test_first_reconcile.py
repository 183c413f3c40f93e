"""A job's first reconcile reads nothing (reads_children); the client rate limit."""

import threading
import time
from typing import Any

import pytest

from ftjobs.api.constants import ANNOTATION_CANCEL
from ftjobs.api.job import FineTuneJob
from ftjobs.controller.reconcile import reads_children
from ftjobs.k8s.ratelimit import TokenBucket
from tests.builders import JobBuilder

pytestmark = pytest.mark.unit


def _job(status: dict[str, Any] | None = None, cancel: bool = False) -> FineTuneJob:
    builder = JobBuilder("demo").set("metadata.uid", "u1").set("metadata.namespace", "ml")
    if status is not None:
        builder = builder.set("status", status)
    if cancel:
        builder = builder.set("metadata.annotations", {ANNOTATION_CANCEL: "now"})
    return builder.build()


@pytest.mark.parametrize(
    ("status", "cancel", "reads"),
    [
        (None, False, False),  # a new job: create attempt 1, nothing to read
        ({"phase": "Pending"}, False, False),
        ({"phase": "Pending", "attempt": 1}, False, True),  # an attempt exists: read it
        ({"phase": "Restarting", "attempt": 2}, False, True),
        (None, True, True),  # cancelled before any attempt: stray Jobs must be found
        ({"phase": "Failed"}, False, True),  # finished (invalid spec): stop strays
    ],
)
def test_only_a_new_jobs_first_reconcile_reads_nothing(
    status: dict[str, Any] | None, cancel: bool, reads: bool
) -> None:
    assert reads_children(_job(status, cancel)) is reads


def test_token_bucket_lets_a_burst_through_then_waits_its_turn() -> None:
    bucket = TokenBucket(qps=1.0, burst=2)
    assert bucket.take() == 0.0
    assert bucket.take() == 0.0
    # The third request waits for the next token (about 1 s at 1 QPS, plus timer slack).
    assert 0.5 < bucket.take() < 1.5


@pytest.mark.parametrize("first_urgent", [False, True])
def test_token_bucket_serves_urgent_requests_first(first_urgent: bool) -> None:
    """A report (low priority) queued first still waits for a create queued after it;
    control: two urgent requests go in the order they came."""
    bucket = TokenBucket(qps=10.0, burst=1)
    bucket.take()
    order: list[str] = []

    def take(label: str, urgent: bool) -> None:
        bucket.take(urgent=urgent)
        order.append(label)

    first = threading.Thread(target=take, args=("first", first_urgent))
    first.start()
    time.sleep(0.03)
    second = threading.Thread(target=take, args=("second", True))
    second.start()
    first.join(5)
    second.join(5)
    assert order == (["first", "second"] if first_urgent else ["second", "first"])


def test_token_bucket_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="qps"):
        TokenBucket(qps=0, burst=1)
