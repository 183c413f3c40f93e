"""The status being computed by one reconcile, with its actions and events (`NextState`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ftjobs.api.job import FineTuneJob
from ftjobs.api.parent import ObservedParent
from ftjobs.api.status import Condition, ConditionType, FineTuneJobStatus, Phase
from ftjobs.api.timestamps import format_time
from ftjobs.controller.reconcile.plan import Event, JobPatch, ObjectRef, Plan, WorkloadPatch

# Status fields the controller owns; `progress`, `latestCheckpoint` and `metrics` belong
# to the trainer and are never part of a controller status patch.
CONTROLLER_FIELDS = (
    "phase",
    "conditions",
    "observed_generation",
    "attempt",
    "restarts",
    "start_time",
    "completion_time",
    "next_attempt_time",
    "message",
    "output_model",
    "base_model",
    "last_failure",
)


class NextState:
    """The desired status, the actions and the events of one reconcile."""

    def __init__(
        self, status: FineTuneJobStatus | None, generation: int | None, now: datetime
    ) -> None:
        self.generation = generation
        self.now = now
        self.stamp = format_time(now)
        self.before = status or FineTuneJobStatus()
        self.status = self.before.model_copy(deep=True)
        self.status.observed_generation = generation
        self.create: list[dict[str, Any]] = []
        self.patches: list[JobPatch] = []
        self.workload_patches: list[WorkloadPatch] = []
        self.queue_wait: float | None = None
        self.delete: list[ObjectRef] = []
        self.annotations: dict[str, str | None] = {}
        self.events: list[Event] = []
        self.requeue: float | None = None

    # conditions
    def condition(self, ctype: ConditionType, status: bool, reason: str, message: str) -> None:
        """Set a condition; a False one is recorded only to flip an existing one."""
        value = "True" if status else "False"
        conds = self.status.conditions
        for i, cond in enumerate(conds):
            if cond.type != ctype.value:
                continue
            if (cond.status, cond.reason, cond.message) == (value, reason, message):
                return
            conds[i] = Condition(
                type=ctype.value,
                status=value,
                reason=reason,
                message=message[:32768],
                last_transition_time=(
                    self.stamp if cond.status != value else cond.last_transition_time
                ),
                observed_generation=self.generation,
            )
            return
        if status:
            conds.append(
                Condition(
                    type=ctype.value,
                    status=value,
                    reason=reason,
                    message=message[:32768],
                    last_transition_time=self.stamp,
                    observed_generation=self.generation,
                )
            )

    def phase(self, phase: Phase, message: str, event: Event | None = None) -> None:
        if self.status.phase != phase.value and event is not None:
            self.events.append(event)
        self.status.phase = phase
        self.status.message = message[:32768]

    def requeue_in(self, seconds: float) -> None:
        seconds = max(seconds, 1.0)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def plan(self) -> Plan:
        return Plan(
            create=tuple(self.create),
            job_patches=tuple(self.patches),
            delete=tuple(self.delete),
            annotations=self.annotations,
            status=status_patch(self.before, self.status),
            events=tuple(self.events),
            requeue_after=self.requeue,
            workload_patches=tuple(self.workload_patches),
            queue_wait_seconds=self.queue_wait,
        )


class JobNextState(NextState):
    """`NextState` for a FineTuneJob that parsed."""

    def __init__(self, job: FineTuneJob, now: datetime) -> None:
        super().__init__(job.status, job.metadata.generation, now)
        self.job = job
        # The FineTuneJob spec.model.fromJob names, as the adapter saw it (if it looked).
        self.parent_seen: ObservedParent | None = None


def status_patch(before: FineTuneJobStatus, after: FineTuneJobStatus) -> dict[str, Any] | None:
    """A merge patch of the controller-owned fields that changed, or None."""
    old = before.model_dump(by_alias=True, mode="json", include=set(CONTROLLER_FIELDS))
    new = after.model_dump(by_alias=True, mode="json", include=set(CONTROLLER_FIELDS))
    patch = {k: v for k, v in new.items() if old.get(k) != v}
    return patch or None
