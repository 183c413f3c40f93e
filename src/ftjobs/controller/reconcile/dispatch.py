"""`reconcile`: the next step for a FineTuneJob, chosen from its phase and its children."""

from __future__ import annotations

from datetime import datetime

from ftjobs.api.constants import ANNOTATION_CANCEL
from ftjobs.api.job import FineTuneJob
from ftjobs.api.status import TERMINAL_PHASES, ConditionType, FineTuneJobStatus, Phase
from ftjobs.controller.reconcile.cleanup import prune_old_attempts
from ftjobs.controller.reconcile.finishing import (
    cancel,
    enforce_deadline,
    finish,
    handle_failed_attempt,
    record_success,
)
from ftjobs.controller.reconcile.observed import Observed
from ftjobs.controller.reconcile.plan import Event, Plan
from ftjobs.controller.reconcile.queueing import kueue_gate
from ftjobs.controller.reconcile.running import restart_when_due, start_attempt, track_active
from ftjobs.controller.reconcile.state import JobNextState, NextState
from ftjobs.render import RenderSettings, attempt_network


def reconcile(
    job: FineTuneJob,
    observed: Observed,
    now: datetime,
    settings: RenderSettings | None = None,
) -> Plan:
    """What to do next for `job`, given its children and the time."""
    nxt = JobNextState(job, now)
    nxt.parent_seen = observed.parent
    status = nxt.status
    if status.phase in TERMINAL_PHASES:
        finish(nxt, observed)
        return nxt.plan()
    if ANNOTATION_CANCEL in job.metadata.annotations:
        cancel(nxt, observed)
        return nxt.plan()

    attempt = max([status.attempt, *(j.attempt for j in observed.jobs)])
    current = next((j for j in observed.jobs if j.attempt == attempt), None)
    if attempt == 0:
        start_attempt(nxt, 1, resume=False, settings=settings)
    elif current is None:
        # The Job of the current attempt vanished (deleted by hand) or its creation was
        # interrupted: create it again under the same attempt number.
        start_attempt(nxt, attempt, resume=attempt > 1, settings=settings)
    elif status.phase == Phase.RESTARTING.value and status.attempt == attempt:
        restart_when_due(nxt, attempt, settings)
    elif current.deleting:
        nxt.requeue_in(2)
    elif current.complete:
        record_success(nxt, current)
    elif current.failed_condition:
        handle_failed_attempt(nxt, current, observed.pod_failures)
    elif not (job.spec.queue_name and kueue_gate(nxt, current, observed.workload, settings)):
        track_active(nxt, current, observed.pod_waiting, settings)
    if current is not None and status.attempt < attempt:
        # The controller stopped between creating attempt N's Job and recording it: the
        # Job's stage-mates may be missing (render.children), create them (or adopt them).
        meta = job.metadata
        assert meta.name and meta.namespace and meta.uid, "reconcile needs a stored object"
        nxt.create.extend(
            attempt_network(namespace=meta.namespace, name=meta.name, uid=meta.uid, attempt=attempt)
        )
        status.attempt = attempt
        status.next_attempt_time = None
        nxt.condition(
            ConditionType.RESTARTING, False, "AttemptCreated", f"Attempt {attempt} created"
        )
    if status.phase not in TERMINAL_PHASES:
        enforce_deadline(nxt, current)
    prune_old_attempts(nxt, observed, status.attempt)
    return nxt.plan()


def reads_children(job: FineTuneJob) -> bool:
    """Whether `reconcile` needs the observed children of `job`. Not for the first
    reconcile of a job that never started an attempt: there are no children to see but
    those a reconcile that crashed half-way left, which the creates of attempt 1 adopt
    (the controller then reconciles again at once, reading them). A cancelled or finished
    job always reads them: stray Jobs must be stopped."""
    status = job.status or FineTuneJobStatus()
    fresh = status.attempt == 0 and status.phase not in TERMINAL_PHASES
    return not fresh or ANNOTATION_CANCEL in job.metadata.annotations


def reconcile_invalid(
    job_status: FineTuneJobStatus | None, generation: int | None, error: str, now: datetime
) -> Plan:
    """The stored object does not parse (spec changed by hand, CRD drift): fail it once."""
    nxt = NextState(job_status, generation, now)
    if nxt.status.phase in TERMINAL_PHASES:
        return nxt.plan()
    nxt.condition(ConditionType.FAILED, True, "InvalidSpec", error)
    nxt.phase(Phase.FAILED, error, Event("Warning", "InvalidSpec", error[:1024]))
    nxt.status.completion_time = nxt.stamp
    return nxt.plan()
