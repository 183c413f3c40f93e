"""The watches' cache of child Jobs and pods: when it answers, and when it must LIST."""

from __future__ import annotations

from typing import Any

import pytest

from ftjobs.api.constants import LABEL_ATTEMPT
from ftjobs.controller.child_cache import ChildCache

pytestmark = pytest.mark.unit
KEY = ("ns", "demo")


def obj(name: str, rv: int, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": str(rv), **extra}}


def pod(name: str, rv: int, attempt: int = 1, phase: str = "Running") -> dict[str, Any]:
    body = obj(name, rv, labels={LABEL_ATTEMPT: str(attempt)})
    body["status"] = {"phase": phase}
    return body


class Lister:
    """Counts the LISTs the cache falls back to; returns what the "server" holds."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.calls = items, 0

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        return list(self.items)


def names(bodies: list[dict[str, Any]]) -> dict[str, str]:
    return {b["metadata"]["name"]: b["metadata"]["resourceVersion"] for b in bodies}


def test_lists_once_then_answers_from_the_watch_until_the_resync() -> None:
    cache = ChildCache()
    server = Lister([obj("demo-1", 5)])
    assert names(cache.jobs(KEY, server)) == {"demo-1": "5"}
    cache.job_event(KEY, obj("demo-1", 7), deleted=False)
    cache.job_event(KEY, obj("demo-2", 8), deleted=False)
    assert names(cache.jobs(KEY, server)) == {"demo-1": "7", "demo-2": "8"}
    assert server.calls == 1
    cache.unsync_all()  # the resync: read afresh once
    assert names(cache.jobs(KEY, server)) == {"demo-1": "7"}  # newer kept, demo-2 gone
    assert server.calls == 2


def test_an_older_body_never_replaces_a_newer_one() -> None:
    cache = ChildCache()
    cache.mark_synced(KEY)
    cache.job_event(KEY, obj("demo-1", 9), deleted=False)
    cache.created(KEY, obj("demo-1", 4))  # our create's response, arriving late
    assert names(cache.jobs(KEY, Lister([]))) == {"demo-1": "9"}


def test_a_deleted_job_is_not_brought_back_by_a_late_response() -> None:
    cache = ChildCache()
    cache.mark_synced(KEY)
    cache.job_event(KEY, obj("demo-1", 12), deleted=True)
    cache.created(KEY, obj("demo-1", 11))
    assert cache.jobs(KEY, Lister([])) == []
    # Control: a Job created again after the deletion (newer) is kept.
    cache.created(KEY, obj("demo-1", 13))
    assert names(cache.jobs(KEY, Lister([]))) == {"demo-1": "13"}


def test_an_unsynced_job_lists_even_with_watch_events_cached() -> None:
    cache = ChildCache()
    cache.job_event(KEY, obj("demo-1", 3), deleted=False)
    server = Lister([obj("demo-1", 3), obj("demo-2", 4)])
    assert names(cache.jobs(KEY, server)) == {"demo-1": "3", "demo-2": "4"}
    assert server.calls == 1


def test_failed_pods_come_from_the_cache_only_when_all_are_there() -> None:
    cache = ChildCache()
    cache.mark_synced(KEY)
    cache.pod_event(KEY, pod("demo-1-0-a", 5, phase="Failed"), deleted=False)
    cache.pod_event(KEY, pod("demo-2-0-b", 6, attempt=2), deleted=False)
    server = Lister([pod("demo-1-0-a", 5, phase="Failed"), pod("demo-1-1-c", 7, phase="Failed")])

    def failed_at_least(n: int) -> Any:
        return lambda ps: sum(p["status"]["phase"] == "Failed" for p in ps) >= n

    # One failed pod cached, and one is all the Job counts: no LIST, attempt 2 left out.
    assert names(cache.pods(KEY, "1", server, failed_at_least(1))) == {"demo-1-0-a": "5"}
    assert server.calls == 0
    # The Job counts two: the cache lacks one, so the pods are LISTed (and cached).
    assert len(cache.pods(KEY, "1", server, failed_at_least(2))) == 2
    assert server.calls == 1
    assert len(cache.pods(KEY, "1", server, failed_at_least(2))) == 2
    assert server.calls == 1


def test_forgetting_a_job_drops_its_children() -> None:
    cache = ChildCache()
    cache.mark_synced(KEY)
    cache.job_event(KEY, obj("demo-1", 3), deleted=False)
    cache.forget(KEY)
    server = Lister([])
    assert cache.jobs(KEY, server) == [] and server.calls == 1
