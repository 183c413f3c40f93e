"""What one reconcile asks the executor (ftjobs.controller.execute) to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftjobs.render import ObjectRef

# ObjectRef is render's: render owns the kinds, apiVersions and names of the children.
__all__ = ["Event", "JobPatch", "ObjectRef", "Plan", "WorkloadPatch"]


@dataclass(frozen=True)
class JobPatch:
    name: str
    suspend: bool


@dataclass(frozen=True)
class WorkloadPatch:
    """Set a Kueue Workload's spec.active (False: Kueue evicts it and suspends the Job)."""

    name: str
    active: bool


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """Actions for the executor, in the order it runs them."""

    create: tuple[dict[str, Any], ...] = ()
    job_patches: tuple[JobPatch, ...] = ()
    delete: tuple[ObjectRef, ...] = ()
    annotations: dict[str, str | None] = field(default_factory=dict)
    status: dict[str, Any] | None = None  # camelCase JSON merge patch for /status
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    workload_patches: tuple[WorkloadPatch, ...] = ()
    # Seconds the attempt waited for Kueue, set by the reconcile that sees it admitted.
    queue_wait_seconds: float | None = None

    @property
    def empty(self) -> bool:
        """No action (a requeue alone is not an action)."""
        return not (
            self.create
            or self.job_patches
            or self.workload_patches
            or self.delete
            or self.annotations
            or self.status
            or self.events
        )
