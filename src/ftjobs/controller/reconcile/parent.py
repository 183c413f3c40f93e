"""spec.model.fromJob when an attempt starts: wait for the parent, fail, or start from it.

The adapter reads the parent FineTuneJob (`Observed.parent`) until the first attempt has
recorded its model in status.baseModel; `ftjobs.api.parent.judge` says what the
parent's state means, this module turns that into status, events and a requeue.
"""

from __future__ import annotations

from typing import Literal

from ftjobs.api.parent import ParentJob, Unusable, Wait, judge
from ftjobs.api.status import Phase
from ftjobs.controller.reconcile.finishing import fail
from ftjobs.controller.reconcile.plan import Event
from ftjobs.controller.reconcile.state import JobNextState

# How often a job whose model.fromJob parent is still running looks at it again (the
# parent's status changes do not wake its children).
PARENT_POLL_SECONDS = 10.0


def resolve_parent(nxt: JobNextState, namespace: str) -> ParentJob | Literal[False] | None:
    """spec.model.fromJob resolved (None without one), or False when the attempt must not
    start: the parent is still running (wait) or can never be used (the job fails).

    The first resolution is kept in status.baseModel, so later attempts start from the
    same model even if the parent has been deleted since."""
    name = nxt.job.spec.model.from_job
    if name is None:
        return None
    if nxt.status.base_model:
        return ParentJob(name=name, namespace=namespace, uri=nxt.status.base_model)
    seen = nxt.parent_seen
    verdict: ParentJob | Wait | Unusable = (
        judge(seen, namespace)
        if seen is not None and seen.name == name
        else Wait(f"spec.model.fromJob: FineTuneJob {name!r} not read yet")
    )
    if isinstance(verdict, Unusable):
        fail(nxt, "FromJobUnusable", verdict.message)
        return False
    if isinstance(verdict, Wait):
        nxt.phase(Phase.PENDING, verdict.message)
        nxt.requeue_in(PARENT_POLL_SECONDS)
        return False
    nxt.status.base_model = verdict.uri
    nxt.events.append(
        Event("Normal", "FromJob", f"spec.model.fromJob {name}: starting from {verdict.uri}")
    )
    return verdict
