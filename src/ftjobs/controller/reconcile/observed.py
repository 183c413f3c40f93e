"""What the adapter observed on the cluster for one FineTuneJob, as reconcile reads it.

The adapter (ftjobs.controller.observe) builds these from API objects; reconcile never
sees a raw API object.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftjobs.api.parent import ObservedParent


@dataclass(frozen=True)
class PodFailure:
    """A failed pod of the current attempt, as the classification needs it."""

    pod: str
    exit_code: int | None = None
    message: str = ""  # the container's termination message, else the pod's status message
    reason: str = ""  # container terminated reason (Error, OOMKilled) or pod reason (Evicted)
    disruption: str = ""  # reason of a DisruptionTarget=True condition, if any


@dataclass(frozen=True)
class ObservedJob:
    """A child batch/v1 Job (one per attempt) and the parts of its status that matter."""

    name: str
    attempt: int
    suspended: bool = False
    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_condition: bool = False
    failure_reason: str = ""
    failure_message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    deleting: bool = False


@dataclass(frozen=True)
class PodWaiting:
    """A pod of the current attempt stuck before starting, and why."""

    pod: str
    reason: str  # CreateContainerConfigError, ErrImagePull, ImagePullBackOff, Unschedulable
    message: str = ""


@dataclass(frozen=True)
class ObservedWorkload:
    """The Kueue Workload of the current attempt's Job (read only for queued Jobs)."""

    name: str
    active: bool = True  # spec.active
    admitted: bool = False  # Admitted=True
    cluster_queue: str = ""  # status.admission.clusterQueue (set while admitted)
    pending_message: str = ""  # why it waits: the QuotaReserved=False message
    evicted_reason: str = ""  # Evicted=True reason: Preempted, PodsReadyTimeout, Deactivated
    evicted_message: str = ""


@dataclass(frozen=True)
class Observed:
    """What exists on the cluster for one FineTuneJob."""

    jobs: tuple[ObservedJob, ...] = ()
    # Failed pods of the current attempt (the adapter lists pods only when its Job failed).
    pod_failures: tuple[PodFailure, ...] = ()
    # Stuck pods of the current attempt (listed only while some of its pods are not ready).
    pod_waiting: tuple[PodWaiting, ...] = ()
    # The FineTuneJob named by spec.model.fromJob (read only until status.baseModel is set).
    parent: ObservedParent | None = None
    # Kueue's Workload of the current attempt (only when its Job carries a queue name).
    workload: ObservedWorkload | None = None
