"""Carry out a reconcile Plan through the adapter, in a crash-safe order.

Order: create children in render's creation stages (`render.creation_stages`: each
stage concurrently, the Job in the last one, so a recorded attempt is a complete one),
patch Jobs, delete, patch annotations — `execute_changes` — then patch status and post
events — `execute_report`. If the controller dies half-way, the next reconcile sees what
exists and finishes the work: creates adopt what exists, deletes accept NotFound, and the
status records a transition only after its actions happened.

The two halves are apart so the controller can run the report at a lower priority than
the next job's changes (controller/handlers.py): in a burst of new FineTuneJobs, every
job's Job is created before any job's status patch and event are sent. `split_at_job`
cuts the changes once more, after the stage that creates the Job: a worker makes only
that first part and takes the next key, and the rest follows in the background, in
the same order (a burst's Jobs do not wait for the workers to create each other's
Services and NetworkPolicies).

`FTJOBS_TEST_PAUSE` is a test hook (tests/integration/test_controller_chaos.py): it stops
this process at a named point of one attempt so a test can kill the leader exactly there.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ftjobs.api.constants import KUEUE_WORKLOAD_API, LABEL_ATTEMPT
from ftjobs.controller.reconcile import Plan
from ftjobs.k8s import AlreadyExists, Kube, KubeError
from ftjobs.render import JOB, creation_stages, is_namespace_identity

log = logging.getLogger("ftjobs.controller")
# Shared by all workers; a reconcile creates one creation stage at once.
_POOL = ThreadPoolExecutor(16, thread_name_prefix="ftjobs-create")
# Test hook, unset in production: "<point>:<namespace>/<name>:<attempt>[:<seconds>]".
# Points: "after-job" (the attempt's Job exists, its Service and NetworkPolicy not yet),
# "before-status" (the Job exists, the status does not record it yet). The worker logs
# "test hook: paused" and sleeps (default 300 s) so the chaos test can SIGKILL the leader
# there; the other workers and the lease renewal go on, as they would in a slow API call.
TEST_PAUSE_ENV = "FTJOBS_TEST_PAUSE"


@dataclass(frozen=True)
class Executed:
    """What making a plan's changes left to know: the FineTuneJob as its annotation patch
    stored it (None without one), and whether a child to create existed already (a
    reconcile that crashed half-way made it: reconcile again, reading what exists)."""

    updated: dict[str, Any] | None
    adopted: bool
    # The children as the server stored them (created or adopted): Jobs for the watch cache.
    stored: tuple[dict[str, Any], ...] = ()


def split_at_job(plan: Plan) -> tuple[Plan, Plan]:
    """The changes of `plan` cut after the creation stage of its Job: the creates up to
    and including that stage, and the rest (later stages, patches, deletes,
    annotations). Without a Job to create, every create is in the first part. Neither
    part reports: the status and events stay with `plan`."""
    stages = creation_stages(plan.create)
    cut = next(
        (i + 1 for i, st in enumerate(stages) if any(JOB.matches(o) for o in st)), len(stages)
    )
    first = tuple(o for st in stages[:cut] for o in st)
    later = tuple(o for st in stages[cut:] for o in st)
    rest = replace(
        plan, create=later, status=None, events=(), requeue_after=None, queue_wait_seconds=None
    )
    return Plan(create=first), rest


def execute_changes(
    kube: Kube,
    ftj: dict[str, Any],
    plan: Plan,
    on_create: Callable[[dict[str, Any]], None] | None = None,
) -> Executed:
    """Create, patch and delete children and patch annotations, for the stored
    FineTuneJob `ftj`.

    `on_create` sees each child just before it is created (the controller remembers its
    Job, so the watch event of our own create does not cost another reconcile)."""
    meta = ftj["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    if on_create is not None:
        for obj in plan.create:
            on_create(obj)
    adopted = False
    stored: list[dict[str, Any]] = []
    # Render owns the order: each stage's objects concurrently, a stage after the last.
    for stage in _stages(plan, ns, name):
        if len(stage) == 1:
            done = [_create(kube, stage[0], uid)]
        else:
            # Each create runs in a copy of this thread's context, so the reconcile's
            # request count (Kube.counting) sees it; wait for all before the next stage.
            contexts = [contextvars.copy_context() for _ in stage]
            done = list(_POOL.map(lambda c, o: c.run(_create, kube, o, uid), contexts, stage))
        adopted |= any(existed for existed, _ in done)
        stored.extend(body for _, body in done)
    for obj in plan.create:
        log.info(
            "created",
            extra={"ftj": f"{ns}/{name}", "kind": obj["kind"], "object": obj["metadata"]["name"]},
        )
    for jp in plan.job_patches:
        kube.merge_patch(JOB.api_version, JOB.kind, ns, jp.name, {"spec": {"suspend": jp.suspend}})
    for wp in plan.workload_patches:
        kube.merge_patch(
            KUEUE_WORKLOAD_API, "Workload", ns, wp.name, {"spec": {"active": wp.active}}
        )
    for ref in plan.delete:
        kube.delete(ref.api_version, ref.kind, ns, ref.name)
    updated: dict[str, Any] | None = None
    if plan.annotations:
        updated = kube.patch_finetunejob_annotations(ns, name, plan.annotations)
    return Executed(updated, adopted, tuple(stored))


def execute_report(kube: Kube, ftj: dict[str, Any], plan: Plan) -> dict[str, Any] | None:
    """Patch the status and post the events of `plan`, after its changes; the FineTuneJob
    as the status patch stored it (None without one)."""
    meta = ftj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    updated: dict[str, Any] | None = None
    if plan.status:
        _test_pause("before-status", ns, name, plan)
        updated = kube.patch_finetunejob_status(ns, name, plan.status)
    for ev in plan.events:
        try:
            kube.post_event(ftj, ev.type, ev.reason, ev.message)
        except KubeError as exc:
            # An event is informative; losing one must not fail the reconcile.
            log.warning("event not posted", extra={"ftj": f"{ns}/{name}", "error": str(exc)})
    return updated


def _create(kube: Kube, obj: dict[str, Any], uid: str) -> tuple[bool, dict[str, Any]]:
    """Create `obj`, or adopt it when it exists and is ours: whether it existed, and the
    object as stored. The namespace's shared trainer identity is nobody's to adopt: that
    it exists is enough."""
    try:
        return False, kube.create(obj)
    except AlreadyExists:
        if is_namespace_identity(obj):
            return False, obj
        return True, kube.create_or_adopt(obj, owner_uid=uid)


def _stages(plan: Plan, ns: str, name: str) -> Iterator[list[dict[str, Any]]]:
    """The creation stages of `plan`, with the test hook's pause after the stage that
    creates this attempt's Job ("after-job": the Job exists, its Service and
    NetworkPolicy do not)."""
    for stage in creation_stages(plan.create):
        yield stage
        if any(JOB.matches(o) for o in stage):
            _test_pause("after-job", ns, name, plan)


def _test_aimed(point: str, ns: str, name: str, plan: Plan) -> float | None:
    """Seconds to pause at `point` for this plan's attempt, if the test hook aims there."""
    spec = os.environ.get(TEST_PAUSE_ENV)
    if not spec:
        return None
    want, target, attempt, *seconds = spec.split(":")
    if want != point or target != f"{ns}/{name}":
        return None
    if not any(
        JOB.matches(o) and o["metadata"]["labels"].get(LABEL_ATTEMPT) == attempt
        for o in plan.create
    ):
        return None
    return float(seconds[0]) if seconds else 300.0


def _test_pause(point: str, ns: str, name: str, plan: Plan) -> None:
    seconds = _test_aimed(point, ns, name, plan)
    if seconds is None:
        return
    log.warning(
        "test hook: paused",
        extra={"ftj": f"{ns}/{name}", "point": point, "attempt": _attempt_of(plan)},
    )
    threading.Event().wait(seconds)


def _attempt_of(plan: Plan) -> int:
    job = next(o for o in plan.create if JOB.matches(o))
    return int(job["metadata"]["labels"][LABEL_ATTEMPT])
