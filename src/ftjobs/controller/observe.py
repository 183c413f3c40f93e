"""From API objects (dicts) to reconcile's `Observed`: child Jobs, failed pods, Kueue.

Pure extraction functions plus `observe`, which reads the cluster through the adapter (or
the watches' cache of it, controller/child_cache.py): the FineTuneJob's Jobs (by label),
and the current attempt's pods only when its Job has failed (exit codes and termination
messages live on the pods) or has pods that are not ready (a pod stuck before starting
says why only on itself).
A Job with a Kueue queue name that has not finished costs one LIST of Workloads (by
Kueue's job-uid label): why it waits, whether it was admitted or evicted.
"""

from __future__ import annotations

from typing import Any

from ftjobs.api.constants import (
    KUEUE_WORKLOAD_API,
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_KUEUE_JOB_UID,
    LABEL_KUEUE_QUEUE,
)
from ftjobs.api.job import FineTuneJob
from ftjobs.api.parent import ObservedParent
from ftjobs.api.status import TERMINAL_PHASES
from ftjobs.controller.child_cache import ChildCache
from ftjobs.controller.reconcile import (
    Observed,
    ObservedJob,
    ObservedWorkload,
    PodFailure,
    PodWaiting,
)
from ftjobs.k8s import Kube, KubeNotFound
from ftjobs.render import JOB


def _true(conditions: list[dict[str, Any]], ctype: str) -> dict[str, Any] | None:
    for cond in conditions:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


def observe_job(obj: dict[str, Any]) -> ObservedJob:
    meta = obj.get("metadata", {})
    status = obj.get("status") or {}
    conds = status.get("conditions") or []
    failed = _true(conds, "Failed")
    labels = meta.get("labels") or {}
    try:
        attempt = int(labels.get(LABEL_ATTEMPT, "0"))
    except ValueError:
        attempt = 0
    return ObservedJob(
        name=meta.get("name", ""),
        attempt=attempt,
        suspended=bool((obj.get("spec") or {}).get("suspend")),
        active=int(status.get("active") or 0),
        ready=int(status.get("ready") or 0),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        complete=_true(conds, "Complete") is not None,
        failed_condition=failed is not None,
        failure_reason=str((failed or {}).get("reason", "")),
        failure_message=str((failed or {}).get("message", "")),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def pod_failure(pod: dict[str, Any]) -> PodFailure | None:
    """The failure of a pod, or None if it did not fail."""
    status = pod.get("status") or {}
    name = pod.get("metadata", {}).get("name", "")
    disruption = _true(status.get("conditions") or [], "DisruptionTarget")
    disruption_reason = str((disruption or {}).get("reason", ""))
    if status.get("phase") != "Failed":
        return None
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated"
        )
        if term and term.get("exitCode") not in (None, 0):
            return PodFailure(
                pod=name,
                exit_code=int(term["exitCode"]),
                message=str(term.get("message") or ""),
                reason=str(term.get("reason") or ""),
                disruption=disruption_reason,
            )
    return PodFailure(
        pod=name,
        message=str(status.get("message") or ""),
        reason=str(status.get("reason") or ""),
        disruption=disruption_reason,
    )


# Container waiting reasons that do not go away by themselves (ContainerCreating and
# PodInitializing do): the kubelet retries, but the pod needs someone to act.
STUCK_REASONS = frozenset(
    {
        "CreateContainerConfigError",  # a missing Secret / ConfigMap or key
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)


def pod_waiting(pod: dict[str, Any]) -> PodWaiting | None:
    """Why a pod is stuck before starting, or None if it is not."""
    meta = pod.get("metadata", {})
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    name = meta.get("name", "")
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return PodWaiting(name, str(waiting["reason"]), str(waiting.get("message") or ""))
    for cond in status.get("conditions") or []:
        if (cond.get("type"), cond.get("status"), cond.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return PodWaiting(name, "Unschedulable", str(cond.get("message") or ""))
    return None


def observe_parent(obj: dict[str, Any] | None, name: str) -> ObservedParent:
    """The FineTuneJob that spec.model.fromJob names, as `ftjobs.api.parent.judge` needs it."""
    if obj is None:
        return ObservedParent(name=name, found=False)
    status = obj.get("status") or {}
    return ObservedParent(
        name=name,
        found=True,
        phase=status.get("phase"),
        output_model=status.get("outputModel"),
    )


def parent_to_read(job: FineTuneJob) -> str | None:
    """The parent FineTuneJob a reconcile must read: spec.model.fromJob until the first
    attempt recorded it in status.baseModel (afterwards the parent is not needed)."""
    status = job.status
    if status is not None and (status.base_model or status.phase in TERMINAL_PHASES):
        return None
    return job.spec.model.from_job


def observe_workload(obj: dict[str, Any]) -> ObservedWorkload:
    """The parts of a Kueue Workload (kueue.x-k8s.io/v1beta2) the reconcile needs."""
    status = obj.get("status") or {}
    conds = status.get("conditions") or []
    evicted = _true(conds, "Evicted") or {}
    pending: dict[str, Any] = next(
        (c for c in conds if c.get("type") == "QuotaReserved" and c.get("status") == "False"),
        {},
    )
    return ObservedWorkload(
        name=obj.get("metadata", {}).get("name", ""),
        active=(obj.get("spec") or {}).get("active", True) is not False,
        admitted=_true(conds, "Admitted") is not None,
        cluster_queue=str((status.get("admission") or {}).get("clusterQueue", "")),
        pending_message=str(pending.get("message", "")),
        evicted_reason=str(evicted.get("reason", "")),
        evicted_message=str(evicted.get("message", "")),
    )


def _workload(kube: Kube, namespace: str, job: dict[str, Any]) -> ObservedWorkload | None:
    uid = job.get("metadata", {}).get("uid", "")
    try:
        items = kube.list(KUEUE_WORKLOAD_API, "Workload", namespace, f"{LABEL_KUEUE_JOB_UID}={uid}")
    except KubeNotFound:  # Kueue is not installed: the Job simply waits, suspended
        return None
    return observe_workload(items[0]) if items else None


def observe(
    kube: Kube,
    namespace: str,
    name: str,
    from_job: str | None = None,
    cache: ChildCache | None = None,
) -> Observed:
    """`from_job`: the parent FineTuneJob to read (spec.model.fromJob while unresolved).
    `cache`: the watches' Jobs and pods (controller/child_cache.py), read instead of a
    LIST where it holds what is needed."""
    parent = (
        observe_parent(kube.get_finetunejob(namespace, from_job), from_job)
        if from_job is not None
        else None
    )
    key = (namespace, name)

    def list_jobs() -> list[dict[str, Any]]:
        return kube.list(JOB.api_version, JOB.kind, namespace, f"{LABEL_JOB}={name}")

    objs = list_jobs() if cache is None else cache.jobs(key, list_jobs)
    jobs = tuple(observe_job(o) for o in objs)
    if not jobs:
        return Observed(parent=parent)
    current = max(jobs, key=lambda j: j.attempt)
    workload = None
    current_obj = next(o for o in objs if o.get("metadata", {}).get("name") == current.name)
    queued = LABEL_KUEUE_QUEUE in (current_obj.get("metadata", {}).get("labels") or {})
    if queued and not (current.complete or current.failed_condition or current.deleting):
        workload = _workload(kube, namespace, current_obj)
    failures: tuple[PodFailure, ...] = ()
    waiting: tuple[PodWaiting, ...] = ()
    failed = current.failed_condition or current.failed
    starting = not current.complete and current.active > current.ready
    if failed or starting:
        pods = _pods(kube, key, current, failed=bool(failed), cache=cache)
        if failed:
            failures = tuple(f for f in map(pod_failure, pods) if f is not None)
        else:
            waiting = tuple(
                sorted((w for w in map(pod_waiting, pods) if w is not None), key=lambda w: w.pod)
            )
    return Observed(
        jobs=jobs, pod_failures=failures, pod_waiting=waiting, parent=parent, workload=workload
    )


def _pods(
    kube: Kube,
    key: tuple[str, str],
    current: ObservedJob,
    *,
    failed: bool,
    cache: ChildCache | None,
) -> list[dict[str, Any]]:
    """The pods of the current attempt. From the cache, a failure is read only when it
    holds as many failed pods as the Job counts (the exit codes decide retry or not); a pod
    still starting may be missing there (its own watch event wakes the job again)."""
    namespace, name = key

    def list_pods() -> list[dict[str, Any]]:
        selector = f"{LABEL_JOB}={name},{LABEL_ATTEMPT}={current.attempt}"
        return kube.list("v1", "Pod", namespace, selector)

    if cache is None:
        return list_pods()

    def complete(pods: list[dict[str, Any]]) -> bool:
        if not failed:
            return True
        return sum(1 for p in pods if pod_failure(p) is not None) >= max(1, current.failed)

    return cache.pods(key, str(current.attempt), list_pods, complete)
