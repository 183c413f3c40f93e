"""A queued job's attempt while Kueue decides (spec.queueName): `kueue_gate`.

Kueue owns the Job's `suspend` under its batch/Job integration: it unsuspends an admitted
Job that someone else suspended. So spec.suspend becomes the Workload's spec.active
(deactivation), never a Job patch. A Workload that Kueue evicted (preemption, a cohort
reclaiming lent quota, the waitForPodsReady timeout, deactivation) ends its attempt: it is
kept inactive, so Kueue never restarts it with the attempt's old configuration (which
starts clean on attempt 1), and once its pods are gone (SIGTERM, checkpoint) attempt N+1
is created, queued, resuming from the latest checkpoint. Not a failure, not a restart.
"""

from __future__ import annotations

from ftjobs.api.status import ConditionType, Phase
from ftjobs.controller.reconcile.observed import ObservedJob, ObservedWorkload
from ftjobs.controller.reconcile.plan import Event, WorkloadPatch
from ftjobs.controller.reconcile.running import queued, start_attempt
from ftjobs.controller.reconcile.state import JobNextState
from ftjobs.render import RenderSettings


def kueue_gate(
    nxt: JobNextState,
    current: ObservedJob,
    wl: ObservedWorkload | None,
    settings: RenderSettings | None,
) -> bool:
    """Plan a queued attempt's step; False once it is admitted and running (the caller
    then tracks its pods as for any job)."""
    spec = nxt.job.spec
    stopped = current.suspended and wl is not None and bool(wl.evicted_reason)
    if wl is not None and wl.active != (not spec.suspend and not stopped):
        nxt.workload_patches.append(WorkloadPatch(wl.name, not wl.active))
    if not stopped:
        if current.suspended or spec.suspend:
            queued(nxt, wl)
            return True
        return False
    assert wl is not None
    why = f"Kueue evicted attempt {current.attempt} ({wl.evicted_reason}: {wl.evicted_message})"
    if current.active > 0:
        msg = f"{why}; waiting for its {current.active} pods to stop (they checkpoint first)"
        nxt.condition(ConditionType.RUNNING, False, wl.evicted_reason, msg)
        nxt.phase(Phase.QUEUED, msg, Event("Normal", wl.evicted_reason, msg[:1024]))
        nxt.requeue_in(2)
        return True
    if spec.suspend:
        queued(nxt, wl)
        return True
    nxt.events.append(
        Event("Normal", wl.evicted_reason, f"{why}; not a failure, not counted as a restart")
    )
    start_attempt(nxt, current.attempt + 1, resume=True, settings=settings)
    return True
