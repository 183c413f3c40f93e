"""The controller's brain: a pure function from (FineTuneJob, what exists, now) to a Plan.

`reconcile` does no I/O. The adapter (ftjobs.controller.observe) turns API objects into
the `Observed` dataclasses (`observed`); the executor (ftjobs.controller.execute) carries out
the returned `Plan` in a fixed, crash-safe order: create, patch Jobs, delete, patch
metadata, patch status, post events.

Level-triggered: the plan depends only on the FineTuneJob, its children and the clock,
never on which event woke the controller, so a restarted controller picks up where the
previous one stopped. Reconciling an already-reconciled state yields an empty plan.

Lifecycle (status.phase):
  Pending -> Queued (suspended, or waiting for Kueue admission) -> Running
          -> Succeeded | Failed | Cancelled, with Restarting between attempts.

Failures are classified in `failures` (retriable or permanent, by the trainer's exit
codes); a retriable one starts attempt N+1 after a backoff (`finishing`). Suspension
(spec.suspend) suspends the same Job: not a failure, not a restart. Under Kueue
(`queueing`) Kueue owns the Job's suspend; an attempt it takes back (preemption) ends and
attempt N+1 resumes from the checkpoint, not counted as a restart.

Cancel: the annotation `ftjobs.dev/cancel-requested` (set by `ftjobs cancel`) deletes the
child Jobs (pods get SIGTERM) and ends in phase Cancelled with a Failed=True condition of
reason Cancelled, so `kubectl wait --for=condition=Failed` returns; the record stays.
Deleting the FineTuneJob removes everything through owner references.

Modules: `dispatch` (the entry point: which step applies), `running` (create, queue,
resume, pods waiting), `queueing` (under Kueue), `finishing` (success, failed attempt,
deadline, cancel), `cleanup` (TTL, old attempts), `failures` (classification), `state`
(the status being computed), `observed` / `plan` (the input and output types), `clock`
(timestamps, backoff).
"""

from ftjobs.api.constants import ANNOTATION_CANCEL
from ftjobs.api.timestamps import format_time, parse_time
from ftjobs.controller.reconcile.cleanup import ANNOTATION_CHILDREN_DELETED
from ftjobs.controller.reconcile.clock import backoff_delay
from ftjobs.controller.reconcile.dispatch import reads_children, reconcile, reconcile_invalid
from ftjobs.controller.reconcile.failures import DISRUPTION_REASONS, Failure, classify
from ftjobs.controller.reconcile.observed import (
    Observed,
    ObservedJob,
    ObservedWorkload,
    PodFailure,
    PodWaiting,
)
from ftjobs.controller.reconcile.plan import Event, JobPatch, ObjectRef, Plan, WorkloadPatch
from ftjobs.controller.reconcile.state import CONTROLLER_FIELDS, status_patch

__all__ = [
    "ANNOTATION_CANCEL",
    "ANNOTATION_CHILDREN_DELETED",
    "CONTROLLER_FIELDS",
    "DISRUPTION_REASONS",
    "Event",
    "Failure",
    "JobPatch",
    "ObjectRef",
    "Observed",
    "ObservedJob",
    "ObservedWorkload",
    "Plan",
    "PodFailure",
    "PodWaiting",
    "WorkloadPatch",
    "backoff_delay",
    "classify",
    "format_time",
    "parse_time",
    "reads_children",
    "reconcile",
    "reconcile_invalid",
    "status_patch",
]
