"""An attempt from its creation to running: create, queue/suspend/resume, pods waiting.

Suspension (spec.suspend) suspends the Job: it is not a failure and does not count as a
restart. Resuming an attempt that never ran unsuspends the same Job; resuming one that ran
(its pods got SIGTERM and checkpointed) starts attempt N+1, because attempt 1's stored
config starts clean and would throw the checkpoint away. Under Kueue, `queueing` decides
first (Kueue owns the Job's suspend).
"""

from __future__ import annotations

from datetime import timedelta

from ftjobs.api.spec import duration_seconds
from ftjobs.api.status import ConditionType, Phase
from ftjobs.api.timestamps import format_time, parse_time
from ftjobs.controller.reconcile.finishing import fail
from ftjobs.controller.reconcile.observed import ObservedJob, ObservedWorkload, PodWaiting
from ftjobs.controller.reconcile.parent import resolve_parent
from ftjobs.controller.reconcile.plan import Event, JobPatch
from ftjobs.controller.reconcile.state import JobNextState
from ftjobs.render import JOB, RenderSettings, child_names, render_job
from ftjobs.render.config import ConfigTooLarge


def start_attempt(
    nxt: JobNextState, attempt: int, *, resume: bool, settings: RenderSettings | None
) -> None:
    job = nxt.job
    meta = job.metadata
    assert meta.name and meta.namespace and meta.uid, "reconcile needs a stored object"
    parent = resolve_parent(nxt, meta.namespace)
    if parent is False:
        return
    try:
        objects = render_job(
            job,
            namespace=meta.namespace,
            name=meta.name,
            uid=meta.uid,
            attempt=attempt,
            resume=resume,
            settings=settings or RenderSettings(),
            parent=parent,
        )
    except ConfigTooLarge as exc:
        # No retry makes it fit: the spec must change (a new FineTuneJob).
        fail(nxt, "ConfigTooLarge", str(exc))
        return
    nxt.create.extend(objects)
    job_name = child_names(meta.name, attempt).job
    nxt.status.attempt = attempt
    nxt.status.next_attempt_time = None
    if attempt == 1 and nxt.before.attempt == 0:
        nxt.condition(ConditionType.CREATED, True, "JobCreated", f"Created Job {job_name}")
        nxt.events.append(Event("Normal", "Created", f"Created attempt 1: Job {job_name}"))
    else:
        nxt.condition(
            ConditionType.RESTARTING, False, "AttemptCreated", f"Attempt {attempt} created"
        )
        nxt.events.append(
            Event(
                "Normal",
                "AttemptCreated",
                f"Created attempt {attempt} (resume from the latest checkpoint): Job {job_name}",
            )
        )
    if job.spec.suspend or job.spec.queue_name:
        queued(nxt)
    else:
        nxt.phase(Phase.PENDING, f"Attempt {attempt}: waiting for pods")


def restart_when_due(nxt: JobNextState, attempt: int, settings: RenderSettings | None) -> None:
    due = nxt.status.next_attempt_time
    if due is not None and parse_time(due) > nxt.now:
        nxt.requeue_in((parse_time(due) - nxt.now).total_seconds())
        return
    start_attempt(nxt, attempt + 1, resume=True, settings=settings)


def track_active(
    nxt: JobNextState,
    current: ObservedJob,
    waiting: tuple[PodWaiting, ...] = (),
    settings: RenderSettings | None = None,
) -> None:
    spec = nxt.job.spec
    if spec.suspend and not current.suspended:
        # The Job controller deletes the pods: SIGTERM, the trainer checkpoints and exits.
        nxt.patches.append(JobPatch(current.name, suspend=True))
        queued(nxt)
        return
    if current.suspended:
        if not spec.suspend and not spec.queue_name:
            if current.attempt == 1 and nxt.status.start_time is not None:
                _resume_in_new_attempt(nxt, current, settings)
                return
            nxt.patches.append(JobPatch(current.name, suspend=False))
            nxt.condition(ConditionType.SUSPENDED, False, "Resumed", "spec.suspend is false")
            nxt.phase(
                Phase.PENDING,
                f"Attempt {current.attempt}: waiting for pods",
                Event("Normal", "Resumed", f"Resumed Job {current.name}"),
            )
            return
        queued(nxt)
        return
    # The Job runs (Kueue admitted it, or it was never suspended).
    if spec.queue_name:
        waited = next(
            (c for c in nxt.before.conditions if c.type == ConditionType.QUEUED.value), None
        )
        if waited is not None and waited.status == "True" and waited.last_transition_time:
            nxt.queue_wait = (nxt.now - parse_time(waited.last_transition_time)).total_seconds()
        nxt.condition(ConditionType.QUEUED, False, "Admitted", "Admitted by Kueue")
    nxt.condition(ConditionType.SUSPENDED, False, "Resumed", "spec.suspend is false")
    nodes = spec.resources.nodes
    if current.active > 0 and current.ready + current.succeeded >= nodes:
        if nxt.status.start_time is None:
            nxt.status.start_time = current.start_time or nxt.stamp
        msg = f"Attempt {current.attempt}: all {nodes} pods running"
        nxt.condition(ConditionType.PODS_WAITING, False, "PodsReady", msg)
        nxt.condition(ConditionType.RUNNING, True, "PodsReady", msg)
        nxt.phase(Phase.RUNNING, msg, Event("Normal", "Running", msg))
    elif nxt.status.phase != Phase.RUNNING.value:
        if waiting:
            _stuck(nxt, current, waiting)
            return
        nxt.condition(ConditionType.PODS_WAITING, False, "PodsStarting", "no pod is stuck")
        nxt.phase(Phase.PENDING, f"Attempt {current.attempt}: waiting for pods")


def _resume_in_new_attempt(
    nxt: JobNextState, current: ObservedJob, settings: RenderSettings | None
) -> None:
    """Resume a suspended attempt 1 that ran: attempt 2 resumes from its checkpoint.

    Attempt 1's config (resume: false) is immutable in its Job's pod template; unsuspending it
    would train from step 0 again. Its pods must be gone first (they checkpoint on SIGTERM),
    or two gangs would write the same checkpoints.
    """
    if current.active > 0:
        msg = f"Resuming: waiting for attempt {current.attempt}'s {current.active} pods to stop"
        nxt.phase(Phase.QUEUED, msg)
        nxt.requeue_in(2)
        return
    nxt.condition(ConditionType.SUSPENDED, False, "Resumed", "spec.suspend is false")
    nxt.events.append(
        Event("Normal", "Resumed", f"Resumed: attempt {current.attempt + 1} continues from LATEST")
    )
    start_attempt(nxt, current.attempt + 1, resume=True, settings=settings)


def _stuck(nxt: JobNextState, current: ObservedJob, waiting: tuple[PodWaiting, ...]) -> None:
    """Pods stuck before starting: say why; after spec.startupTimeout, fail with that reason.

    The clock starts when the PodsWaiting condition turned True (its lastTransitionTime),
    so it survives controller restarts and ignores the time pods spent pulling normally.
    """
    timeout = nxt.job.spec.startup_timeout
    reason = waiting[0].reason
    detail = "; ".join(
        f"pod {w.pod}: {w.reason}" + (f": {w.message.strip()}" if w.message.strip() else "")
        for w in waiting[:3]
    ) + (f" (and {len(waiting) - 3} more)" if len(waiting) > 3 else "")
    before = next(
        (c for c in nxt.status.conditions if c.type == ConditionType.PODS_WAITING.value), None
    )
    nxt.condition(ConditionType.PODS_WAITING, True, reason, detail)
    cond = next(c for c in nxt.status.conditions if c.type == ConditionType.PODS_WAITING.value)
    since = parse_time(cond.last_transition_time or nxt.stamp)
    due = since + timedelta(seconds=duration_seconds(timeout))
    if nxt.now >= due:
        nxt.delete.append(JOB.named(current.name))
        fail(
            nxt,
            reason,
            f"Attempt {current.attempt}: pods did not start within spec.startupTimeout "
            f"{timeout}: {detail}",
        )
        return
    msg = (
        f"Attempt {current.attempt}: waiting for pods: {detail} (the job fails at "
        f"{format_time(due)}, spec.startupTimeout {timeout})"
    )
    if before is None or (before.status, before.reason) != ("True", reason):
        nxt.events.append(Event("Warning", reason, msg[:1024]))
    nxt.status.phase = Phase.PENDING
    nxt.status.message = msg[:32768]
    nxt.requeue_in((due - nxt.now).total_seconds())


def queued(nxt: JobNextState, wl: ObservedWorkload | None = None) -> None:
    """Phase Queued: suspended by spec.suspend, or waiting for Kueue (with its reason)."""
    spec = nxt.job.spec
    if spec.suspend:
        msg = "Suspended (spec.suspend is true): pods stop after a checkpoint"
        nxt.condition(ConditionType.SUSPENDED, True, "Suspended", msg)
        reason = "Suspended"
    else:
        msg = f"Waiting for admission by Kueue queue {spec.queue_name}"
        if wl is not None and wl.pending_message:
            msg += f": {wl.pending_message}"
        # Kueue's Workload appears just after the Job, and its message changes while it
        # waits; no event of ours says so, so look again.
        nxt.requeue_in(5 if wl is None else 15)
        nxt.condition(ConditionType.SUSPENDED, False, "Resumed", "spec.suspend is false")
        nxt.condition(ConditionType.QUEUED, True, "AwaitingAdmission", msg)
        reason = "Queued"
    nxt.condition(ConditionType.RUNNING, False, reason, msg)
    nxt.phase(Phase.QUEUED, msg, Event("Normal", reason, msg))
