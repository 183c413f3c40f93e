"""Deleting children: every child after ttlSecondsAfterFinished, old attempts' children."""

from __future__ import annotations

from datetime import timedelta

from ftjobs.api.constants import GROUP
from ftjobs.api.timestamps import parse_time
from ftjobs.controller.reconcile.observed import Observed
from ftjobs.controller.reconcile.plan import Event
from ftjobs.controller.reconcile.state import JobNextState
from ftjobs.render import attempt_refs, job_refs

ANNOTATION_CHILDREN_DELETED = f"{GROUP}/children-deleted"


def expire_children(nxt: JobNextState) -> None:
    """ttlSecondsAfterFinished: delete every child object (never the outputs in storage)."""
    ttl = nxt.job.spec.ttl_seconds_after_finished
    done = nxt.status.completion_time
    meta = nxt.job.metadata
    if ttl is None or done is None or ANNOTATION_CHILDREN_DELETED in meta.annotations:
        return
    due = parse_time(done) + timedelta(seconds=ttl)
    if nxt.now < due:
        nxt.requeue_in((due - nxt.now).total_seconds())
        return
    assert meta.name
    for attempt in range(1, max(nxt.status.attempt, 1) + 1):
        nxt.delete.extend(attempt_refs(meta.name, attempt))
    nxt.delete.extend(job_refs(meta.name))
    nxt.annotations[ANNOTATION_CHILDREN_DELETED] = nxt.stamp
    nxt.events.append(
        Event(
            "Normal",
            "ChildrenDeleted",
            f"ttlSecondsAfterFinished ({ttl}s): deleted the "
            "child objects; outputs in storage are kept",
        )
    )


def prune_old_attempts(nxt: JobNextState, observed: Observed, attempt: int) -> None:
    """Keep the current and the previous attempt (its pods' logs explain the restart)."""
    meta = nxt.job.metadata
    assert meta.name
    for j in observed.jobs:
        if j.attempt < attempt - 1 and not j.deleting:
            nxt.delete.extend(attempt_refs(meta.name, j.attempt))
