"""The child Jobs and trainer pods of each FineTuneJob, as the controller's watches show them.

A reconcile reads a FineTuneJob's Jobs (and its pods, when it needs them) from here
instead of LISTing them: the watches deliver every one of these objects anyway, and in a
burst each LIST is one more request in the API server's queue, before the next job's
creates (docs/benchmarks.md). client-go's informers do the same for kube-controller-manager.

The cache of one FineTuneJob is trusted only once it is *synced*: seeded by a LIST, or by a
first reconcile that created the children itself (a new job has no others: the same
reasoning as `reconcile.reads_children`). Every tenth resync (`--reread-every`, 10 minutes
by default) un-syncs every job, so a watch event that never came (a deletion while a watch
was reconnecting) misleads for that long at most. Our own creates enter the cache with the
server's response, so the next reconcile sees its Job even before the watch event does
(kube-controller-manager's "expectations"). Bodies compete by resourceVersion: an older one
never replaces a newer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ftjobs.api.constants import LABEL_ATTEMPT

Key = tuple[str, str]  # (namespace, FineTuneJob name)
Body = dict[str, Any]


def version(body: Body) -> int:
    """A stored object's resourceVersion as a number (-1 if it has none)."""
    try:
        return int(body.get("metadata", {}).get("resourceVersion", ""))
    except ValueError:
        return -1


# What of a Job or pod `observe` reads (and the watch signatures): a cached body keeps only
# this, not the pod template, the trainer's config annotation or managedFields, which are
# most of an object's size (the cache held ~120 KB of Python objects a Job and pod).
_METADATA_KEPT = ("name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp")


def slim(body: Body) -> Body:
    """The parts of a child Job or pod the controller reads."""
    meta = body.get("metadata") or {}
    out: Body = {"metadata": {k: meta[k] for k in _METADATA_KEPT if k in meta}}
    if "suspend" in (body.get("spec") or {}):
        out["spec"] = {"suspend": body["spec"]["suspend"]}
    if "status" in body:
        out["status"] = body["status"]
    return out


class _Objects:
    """One kind's bodies per FineTuneJob, with the last deletion of each name."""

    def __init__(self) -> None:
        self.by_key: dict[Key, dict[str, Body]] = {}
        self.gone: dict[tuple[Key, str], int] = {}

    def put(self, key: Key, body: Body) -> None:
        name = body.get("metadata", {}).get("name", "")
        if version(body) <= self.gone.get((key, name), -1):
            return  # a response that arrived after the object's deletion event
        kept = self.by_key.setdefault(key, {})
        if name not in kept or version(kept[name]) <= version(body):
            kept[name] = slim(body)

    def delete(self, key: Key, body: Body) -> None:
        name = body.get("metadata", {}).get("name", "")
        self.by_key.get(key, {}).pop(name, None)
        self.gone[(key, name)] = version(body)

    def replace(self, key: Key, bodies: list[Body]) -> None:
        """What a LIST returned, except where a watch event already brought newer."""
        kept = self.by_key.get(key, {})
        fresh = {b.get("metadata", {}).get("name", ""): slim(b) for b in bodies}
        for name, body in fresh.items():
            if name in kept and version(kept[name]) > version(body):
                fresh[name] = kept[name]
        self.by_key[key] = fresh

    def forget(self, key: Key) -> None:
        self.by_key.pop(key, None)
        self.gone = {k: v for k, v in self.gone.items() if k[0] != key}


class ChildCache:
    """Jobs and pods by owning FineTuneJob; the watch handlers (event loop) and the
    reconciles (worker threads) both use it, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs = _Objects()
        self._pods = _Objects()
        self._synced: set[Key] = set()

    # --- fed by the watches and by our own creates ----------------------------------------

    def job_event(self, key: Key, body: Body, *, deleted: bool) -> None:
        with self._lock:
            (self._jobs.delete if deleted else self._jobs.put)(key, body)

    def pod_event(self, key: Key, body: Body, *, deleted: bool) -> None:
        with self._lock:
            (self._pods.delete if deleted else self._pods.put)(key, body)

    def created(self, key: Key, body: Body) -> None:
        """A Job as our own create (or adoption) returned it."""
        self.job_event(key, body, deleted=False)

    # --- read by the reconciles -----------------------------------------------------------

    def jobs(self, key: Key, list_jobs: Callable[[], list[Body]]) -> list[Body]:
        """The Jobs of `key`: from the cache once synced, else by `list_jobs` (which then
        seeds it)."""
        with self._lock:
            if key in self._synced:
                return list(self._jobs.by_key.get(key, {}).values())
        listed = list_jobs()
        with self._lock:
            self._jobs.replace(key, listed)
            self._synced.add(key)
            return list(self._jobs.by_key[key].values())

    def pods(
        self,
        key: Key,
        attempt: str,
        list_pods: Callable[[], list[Body]],
        complete: Callable[[list[Body]], bool],
    ) -> list[Body]:
        """The pods of `key`'s attempt `attempt` (label value): from the cache when it holds
        what `complete` asks for (e.g. a failed pod's exit code), else by `list_pods`."""
        with self._lock:
            cached = [
                p
                for p in self._pods.by_key.get(key, {}).values()
                if (p.get("metadata", {}).get("labels") or {}).get(LABEL_ATTEMPT) == attempt
            ]
        if key in self._synced and complete(cached):
            return cached
        listed = list_pods()
        with self._lock:
            for pod in listed:
                self._pods.put(key, pod)
        return [slim(p) for p in listed]

    def mark_synced(self, key: Key) -> None:
        """`key`'s children are all known (a new job's first reconcile created them)."""
        with self._lock:
            self._jobs.by_key.setdefault(key, {})
            self._synced.add(key)

    def unsync_all(self) -> None:
        with self._lock:
            self._synced.clear()

    def forget(self, key: Key) -> None:
        with self._lock:
            self._jobs.forget(key)
            self._pods.forget(key)
            self._synced.discard(key)
