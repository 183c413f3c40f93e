"""The controller's brain: a pure function from (FineTuneJob, what exists, now) to a Plan.

`reconcile` does no I/O. The adapter (ftjobs.controller.observe) turns API objects into
the `Observed` dataclasses below; the executor (ftjobs.controller.execute) carries out
the returned `Plan` in a fixed, crash-safe order: create, patch Jobs, delete, patch
metadata, patch status, post events.

Level-triggered: the plan depends only on the FineTuneJob, its children and the clock,
never on which event woke the controller, so a restarted controller picks up where the
previous one stopped. Reconciling an already-reconciled state yields an empty plan.

Lifecycle (status.phase):
  Pending -> Queued (suspended, or waiting for Kueue admission) -> Running
          -> Succeeded | Failed | Cancelled, with Restarting between attempts.

Failure classification (the trainer owns the codes, see ftjobs.api.constants):
  retriable: exit 75 (EX_TEMPFAIL), a pod disrupted (eviction, preemption, node loss,
             DisruptionTarget condition), a signal death (exit > 128) that is not OOMKilled;
  permanent: exit 78 (EX_CONFIG), OOMKilled, any other non-zero code (the trainer maps
             every transient problem it knows to 75, so an unknown code is a bug that a
             retry would only repeat).
A retriable failure starts attempt N+1 (resume from LATEST) after an exponential backoff,
until failurePolicy.maxRestarts is spent, or until failurePolicy.maxRepeatedFailures
attempts in a row failed the same way with no new checkpoint (ftjobs.controller.repeats).
Suspension (spec.suspend or a Kueue preemption) suspends the same Job: it is not a failure
and does not count as a restart.

Cancel: the annotation `ftjobs.dev/cancel-requested` (set by `ftjobs cancel`) deletes the
child Jobs (pods get SIGTERM) and ends in phase Cancelled with a Failed=True condition of
reason Cancelled, so `kubectl wait --for=condition=Failed` returns; the record stays.
Deleting the FineTuneJob removes everything through owner references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ftjobs.api.constants import ANNOTATION_CANCEL, EXIT_PERMANENT, EXIT_RETRIABLE, GROUP
from ftjobs.api.job import FineTuneJob
from ftjobs.api.spec import duration_seconds
from ftjobs.api.status import (
    TERMINAL_PHASES,
    Condition,
    ConditionType,
    FineTuneJobStatus,
    Phase,
)
from ftjobs.api.trainer_config import job_output_uri
from ftjobs.controller import repeats
from ftjobs.render import RenderSettings, child_names, render_job

ANNOTATION_CHILDREN_DELETED = f"{GROUP}/children-deleted"

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
    "last_failure",
)

# Pod disruption reasons (the DisruptionTarget condition, pod.status.reason) that mean
# the node or the cluster took the pod away, not the trainer: always retriable.
DISRUPTION_REASONS = frozenset(
    {
        "Evicted",
        "NodeLost",
        "Preempting",
        "Shutdown",
        "Terminated",
        "UnexpectedAdmissionError",
        "PreemptionByScheduler",
        "PreemptionByKubeScheduler",
        "DeletionByTaintManager",
        "DeletionByPodGC",
        "EvictionByEvictionAPI",
        "TerminationByKubelet",
    }
)
_EXIT_CODE_IN_MESSAGE = re.compile(r"exit code (\d+)")


# --- what the adapter observed -----------------------------------------------------------


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
class Observed:
    """What exists on the cluster for one FineTuneJob."""

    jobs: tuple[ObservedJob, ...] = ()
    # Failed pods of the current attempt (the adapter lists pods only when its Job failed).
    pod_failures: tuple[PodFailure, ...] = ()
    # Stuck pods of the current attempt (listed only while some of its pods are not ready).
    pod_waiting: tuple[PodWaiting, ...] = ()


# --- what to do ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class JobPatch:
    name: str
    suspend: bool


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

    @property
    def empty(self) -> bool:
        """No action (a requeue alone is not an action)."""
        return not (
            self.create
            or self.job_patches
            or self.delete
            or self.annotations
            or self.status
            or self.events
        )


@dataclass(frozen=True)
class Failure:
    retriable: bool
    reason: str
    message: str
    signature: str = ""  # what identifies it across attempts ("" = not an error of the job)


# --- time helpers -------------------------------------------------------------------------


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def backoff_delay(backoff_seconds: int, max_backoff_seconds: int, restarts: int) -> int:
    """Delay before attempt `restarts + 2`: backoff_seconds doubling, capped."""
    return int(min(backoff_seconds * (2 ** min(restarts, 30)), max_backoff_seconds))


# --- failure classification ---------------------------------------------------------------


def classify(job: ObservedJob, pods: tuple[PodFailure, ...]) -> Failure:
    """Why the attempt's Job failed, and whether a new attempt can help."""
    if job.failure_reason == "DeadlineExceeded":
        # The Job's activeDeadlineSeconds: its pods were stopped (and may well have exited
        # with the retriable code on SIGTERM), but the time budget is spent.
        return Failure(False, "DeadlineExceeded", job.failure_message or "deadline exceeded")
    # A permanent verdict from any pod wins: restarting would fail the same way.
    for pod in pods:
        if pod.exit_code == EXIT_PERMANENT:
            return Failure(False, "PermanentFailure", _describe(pod))
    for pod in pods:
        if pod.exit_code not in (None, 0, EXIT_RETRIABLE) and not pod.disruption:
            if pod.reason == "OOMKilled":
                return Failure(False, "OOMKilled", _describe(pod))
            if pod.exit_code is not None and pod.exit_code <= 128:
                return Failure(False, "PermanentFailure", _describe(pod))
    for pod in pods:
        if pod.exit_code == EXIT_RETRIABLE:
            return Failure(True, "RetriableFailure", _describe(pod), _signature(pods))
        if pod.disruption or pod.reason in DISRUPTION_REASONS:
            return Failure(True, "PodDisrupted", _describe(pod))
        if pod.exit_code is not None and pod.exit_code > 128:
            return Failure(True, "PodKilled", _describe(pod), _signature(pods))
    # No pod left to look at (garbage-collected): the Job's condition message names the
    # exit code when podFailurePolicy matched.
    match = _EXIT_CODE_IN_MESSAGE.search(job.failure_message)
    if match:
        code = int(match.group(1))
        retriable = code == EXIT_RETRIABLE or (code > 128)
        return Failure(
            retriable,
            "RetriableFailure" if retriable else "PermanentFailure",
            job.failure_message,
        )
    # BackoffLimitExceeded with nothing else known: pods failed for reasons the trainer did
    # not classify (image pull, node loss before start); give it another attempt.
    return Failure(True, job.failure_reason or "JobFailed", job.failure_message or "Job failed")


def _signature(pods: tuple[PodFailure, ...]) -> str:
    """The attempt's failure across its pods, independent of pod names and order."""
    sigs = sorted(
        {
            repeats.signature(p.exit_code, p.message)
            for p in pods
            if not (p.disruption or p.reason in DISRUPTION_REASONS)
        }
        - {""}
    )
    return " | ".join(sigs)[: repeats.SIGNATURE_LIMIT]


def _describe(pod: PodFailure) -> str:
    what = f"pod {pod.pod}"
    if pod.exit_code is not None:
        what += f" exited with code {pod.exit_code}"
    elif pod.disruption or pod.reason:
        what += f" was disrupted ({pod.disruption or pod.reason})"
    if pod.reason and pod.exit_code is not None and pod.reason not in ("Error", "Completed"):
        what += f" ({pod.reason})"
    if pod.message:
        what += f": {pod.message.strip()}"
    return what


# --- the status being computed ------------------------------------------------------------


class _Next:
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
        )


class _JobNext(_Next):
    """`_Next` for a FineTuneJob that parsed."""

    def __init__(self, job: FineTuneJob, now: datetime) -> None:
        super().__init__(job.status, job.metadata.generation, now)
        self.job = job


def status_patch(before: FineTuneJobStatus, after: FineTuneJobStatus) -> dict[str, Any] | None:
    """A merge patch of the controller-owned fields that changed, or None."""
    old = before.model_dump(by_alias=True, mode="json", include=set(CONTROLLER_FIELDS))
    new = after.model_dump(by_alias=True, mode="json", include=set(CONTROLLER_FIELDS))
    patch = {k: v for k, v in new.items() if old.get(k) != v}
    return patch or None


# --- reconcile ----------------------------------------------------------------------------


def reconcile(
    job: FineTuneJob,
    observed: Observed,
    now: datetime,
    settings: RenderSettings | None = None,
) -> Plan:
    """What to do next for `job`, given its children and the time."""
    nxt = _JobNext(job, now)
    status = nxt.status
    if status.phase in TERMINAL_PHASES:
        _finished(nxt, observed)
        return nxt.plan()
    if ANNOTATION_CANCEL in job.metadata.annotations:
        _cancel(nxt, observed)
        return nxt.plan()

    attempt = max([status.attempt, *(j.attempt for j in observed.jobs)])
    current = next((j for j in observed.jobs if j.attempt == attempt), None)
    if attempt == 0:
        _start_attempt(nxt, 1, resume=False, settings=settings)
    elif current is None:
        # The Job of the current attempt vanished (deleted by hand) or its creation was
        # interrupted: create it again under the same attempt number.
        _start_attempt(nxt, attempt, resume=attempt > 1, settings=settings)
    elif status.phase == Phase.RESTARTING.value and status.attempt == attempt:
        _restart_when_due(nxt, attempt, settings)
    elif current.deleting:
        nxt.requeue_in(2)
    elif current.complete:
        _succeeded(nxt, current)
    elif current.failed_condition:
        _attempt_failed(nxt, current, observed.pod_failures)
    else:
        _active(nxt, current, observed.pod_waiting)
    if current is not None and status.attempt < attempt:
        # The controller stopped between creating attempt N's Job and recording it.
        status.attempt = attempt
        status.next_attempt_time = None
        nxt.condition(
            ConditionType.RESTARTING, False, "AttemptCreated", f"Attempt {attempt} created"
        )
    if status.phase not in TERMINAL_PHASES:
        _deadline(nxt, current)
    _prune_old_attempts(nxt, observed, status.attempt)
    return nxt.plan()


def reconcile_invalid(
    job_status: FineTuneJobStatus | None, generation: int | None, error: str, now: datetime
) -> Plan:
    """The stored object does not parse (spec changed by hand, CRD drift): fail it once."""
    nxt = _Next(job_status, generation, now)
    if nxt.status.phase in TERMINAL_PHASES:
        return nxt.plan()
    nxt.condition(ConditionType.FAILED, True, "InvalidSpec", error)
    nxt.phase(Phase.FAILED, error, Event("Warning", "InvalidSpec", error[:1024]))
    nxt.status.completion_time = nxt.stamp
    return nxt.plan()


def _start_attempt(
    nxt: _JobNext, attempt: int, *, resume: bool, settings: RenderSettings | None
) -> None:
    job = nxt.job
    meta = job.metadata
    assert meta.name and meta.namespace and meta.uid, "reconcile needs a stored object"
    nxt.create.extend(
        render_job(
            job,
            namespace=meta.namespace,
            name=meta.name,
            uid=meta.uid,
            attempt=attempt,
            resume=resume,
            settings=settings or RenderSettings(),
        )
    )
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
        _queued(nxt)
    else:
        nxt.phase(Phase.PENDING, f"Attempt {attempt}: waiting for pods")


def _restart_when_due(nxt: _JobNext, attempt: int, settings: RenderSettings | None) -> None:
    due = nxt.status.next_attempt_time
    if due is not None and parse_time(due) > nxt.now:
        nxt.requeue_in((parse_time(due) - nxt.now).total_seconds())
        return
    _start_attempt(nxt, attempt + 1, resume=True, settings=settings)


def _active(nxt: _JobNext, current: ObservedJob, waiting: tuple[PodWaiting, ...] = ()) -> None:
    spec = nxt.job.spec
    if spec.suspend and not current.suspended:
        # The Job controller deletes the pods: SIGTERM, the trainer checkpoints and exits.
        nxt.patches.append(JobPatch(current.name, suspend=True))
        _queued(nxt)
        return
    if current.suspended:
        if not spec.suspend and not spec.queue_name:
            nxt.patches.append(JobPatch(current.name, suspend=False))
            nxt.condition(ConditionType.SUSPENDED, False, "Resumed", "spec.suspend is false")
            nxt.phase(
                Phase.PENDING,
                f"Attempt {current.attempt}: waiting for pods",
                Event("Normal", "Resumed", f"Resumed Job {current.name}"),
            )
            return
        _queued(nxt)
        return
    # The Job runs (Kueue admitted it, or it was never suspended).
    if spec.queue_name:
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


def _stuck(nxt: _JobNext, current: ObservedJob, waiting: tuple[PodWaiting, ...]) -> None:
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
        nxt.delete.append(ObjectRef("batch/v1", "Job", current.name))
        _fail(
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


def _queued(nxt: _JobNext) -> None:
    spec = nxt.job.spec
    if spec.suspend:
        msg = "Suspended (spec.suspend is true): pods stop after a checkpoint"
        nxt.condition(ConditionType.SUSPENDED, True, "Suspended", msg)
        reason = "Suspended"
    else:
        msg = f"Waiting for admission by Kueue queue {spec.queue_name}"
        nxt.condition(ConditionType.SUSPENDED, False, "Resumed", "spec.suspend is false")
        nxt.condition(ConditionType.QUEUED, True, "AwaitingAdmission", msg)
        reason = "Queued"
    nxt.condition(ConditionType.RUNNING, False, reason, msg)
    nxt.phase(Phase.QUEUED, msg, Event("Normal", reason, msg))


def _succeeded(nxt: _JobNext, current: ObservedJob) -> None:
    job = nxt.job
    status = nxt.status
    msg = f"Attempt {current.attempt} completed"
    status.completion_time = current.completion_time or nxt.stamp
    if status.start_time is None:
        status.start_time = current.start_time or status.completion_time
    if status.output_model is None and job.metadata.namespace and job.metadata.name:
        status.output_model = (
            job_output_uri(job.spec.storage.output, job.metadata.namespace, job.metadata.name)
            + "/model"
        )
    nxt.condition(ConditionType.RUNNING, False, "Completed", msg)
    nxt.condition(ConditionType.SUCCEEDED, True, "Completed", msg)
    nxt.phase(Phase.SUCCEEDED, msg, Event("Normal", "Succeeded", msg))
    _ttl(nxt)


def _attempt_failed(nxt: _JobNext, current: ObservedJob, pods: tuple[PodFailure, ...]) -> None:
    policy = nxt.job.spec.failure_policy
    status = nxt.status
    failure = classify(current, pods)
    if failure.retriable and failure.signature:
        checkpoint = status.latest_checkpoint.step if status.latest_checkpoint else None
        streak = repeats.next_streak(
            status.last_failure, failure.signature, current.attempt, checkpoint
        )
        status.last_failure = streak
        if streak.attempts >= policy.max_repeated_failures:
            first = current.attempt - streak.attempts + 1
            _fail(
                nxt,
                "RepeatedFailure",
                f"attempts {first}-{current.attempt} failed the same way with no new "
                f"checkpoint in between (failurePolicy.maxRepeatedFailures "
                f"{policy.max_repeated_failures}); not retrying: {failure.message}",
            )
            return
    if failure.retriable and status.restarts < policy.max_restarts:
        delay = backoff_delay(policy.backoff_seconds, policy.max_backoff_seconds, status.restarts)
        status.restarts += 1
        status.next_attempt_time = format_time(nxt.now + timedelta(seconds=delay))
        msg = (
            f"Attempt {current.attempt} failed ({failure.message}); attempt "
            f"{current.attempt + 1} in {delay}s (restart {status.restarts} of "
            f"{policy.max_restarts})"
        )
        nxt.condition(ConditionType.RUNNING, False, failure.reason, msg)
        nxt.condition(ConditionType.RESTARTING, True, failure.reason, msg)
        nxt.phase(Phase.RESTARTING, msg, Event("Warning", "Restarting", msg))
        nxt.status.attempt = current.attempt
        nxt.requeue_in(delay)
        return
    if failure.retriable:
        reason = "RestartsExhausted"
        msg = f"{policy.max_restarts} restarts exhausted; last failure: {failure.message}"
    else:
        reason, msg = failure.reason, failure.message
    _fail(nxt, reason, msg)


def _fail(nxt: _JobNext, reason: str, msg: str) -> None:
    nxt.status.completion_time = nxt.stamp
    nxt.status.next_attempt_time = None
    nxt.condition(ConditionType.RUNNING, False, reason, msg)
    nxt.condition(ConditionType.RESTARTING, False, reason, msg)
    nxt.condition(ConditionType.FAILED, True, reason, msg)
    nxt.phase(Phase.FAILED, msg, Event("Warning", reason, msg[:1024]))
    _ttl(nxt)


def _deadline(nxt: _JobNext, current: ObservedJob | None) -> None:
    limit = nxt.job.spec.active_deadline_seconds
    start = nxt.status.start_time
    if limit is None or start is None:
        return
    due = parse_time(start) + timedelta(seconds=limit)
    if nxt.now < due:
        nxt.requeue_in((due - nxt.now).total_seconds())
        return
    if current is not None and not (current.complete or current.failed_condition):
        nxt.delete.append(ObjectRef("batch/v1", "Job", current.name))
    _fail(nxt, "DeadlineExceeded", f"activeDeadlineSeconds ({limit}s) exceeded")


def _cancel(nxt: _JobNext, observed: Observed) -> None:
    for j in observed.jobs:
        if not j.deleting and not (j.complete or j.failed_condition):
            nxt.delete.append(ObjectRef("batch/v1", "Job", j.name))
    msg = "Cancelled (annotation ftjobs.dev/cancel-requested)"
    nxt.status.completion_time = nxt.stamp
    nxt.status.next_attempt_time = None
    nxt.condition(ConditionType.RUNNING, False, "Cancelled", msg)
    nxt.condition(ConditionType.RESTARTING, False, "Cancelled", msg)
    nxt.condition(ConditionType.FAILED, True, "Cancelled", msg)
    nxt.phase(Phase.CANCELLED, msg, Event("Normal", "Cancelled", msg))
    _ttl(nxt)


def _finished(nxt: _JobNext, observed: Observed) -> None:
    """A terminal job: stop stray Jobs (a cancel interrupted mid-way), then the TTL."""
    if nxt.status.phase != Phase.SUCCEEDED.value:
        for j in observed.jobs:
            if not j.deleting and not (j.complete or j.failed_condition):
                nxt.delete.append(ObjectRef("batch/v1", "Job", j.name))
    _ttl(nxt)


def _ttl(nxt: _JobNext) -> None:
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
        nxt.delete.extend(_attempt_refs(meta.name, attempt))
    names = child_names(meta.name, 1)
    nxt.delete.extend(
        [
            ObjectRef("rbac.authorization.k8s.io/v1", "RoleBinding", names.role_binding),
            ObjectRef("rbac.authorization.k8s.io/v1", "Role", names.role),
            ObjectRef("v1", "ServiceAccount", names.service_account),
        ]
    )
    nxt.annotations[ANNOTATION_CHILDREN_DELETED] = nxt.stamp
    nxt.events.append(
        Event(
            "Normal",
            "ChildrenDeleted",
            f"ttlSecondsAfterFinished ({ttl}s): deleted the "
            "child objects; outputs in storage are kept",
        )
    )


def _attempt_refs(name: str, attempt: int) -> list[ObjectRef]:
    names = child_names(name, attempt)
    # The Job goes last: its absence is what marks the attempt as gone.
    return [
        ObjectRef("v1", "ConfigMap", names.config_map),
        ObjectRef("v1", "Service", names.service),
        ObjectRef("networking.k8s.io/v1", "NetworkPolicy", names.network_policy),
        ObjectRef("batch/v1", "Job", names.job),
    ]


def _prune_old_attempts(nxt: _JobNext, observed: Observed, attempt: int) -> None:
    """Keep the current and the previous attempt (its pods' logs explain the restart)."""
    meta = nxt.job.metadata
    assert meta.name
    for j in observed.jobs:
        if j.attempt < attempt - 1 and not j.deleting:
            nxt.delete.extend(_attempt_refs(meta.name, j.attempt))
