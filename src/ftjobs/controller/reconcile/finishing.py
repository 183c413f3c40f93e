"""How a job ends: success, a failed attempt (retry or fail), the deadline, cancel.

A retriable failure starts attempt N+1 (resume from LATEST) after an exponential backoff,
until failurePolicy.maxRestarts is spent, or until failurePolicy.maxRepeatedFailures
attempts in a row failed the same way with no new checkpoint (ftjobs.controller.repeats).
"""

from __future__ import annotations

from datetime import timedelta

from ftjobs.api.status import ConditionType, Phase
from ftjobs.api.timestamps import format_time, parse_time
from ftjobs.api.trainer_config import job_output_uri
from ftjobs.controller import repeats
from ftjobs.controller.reconcile.cleanup import expire_children
from ftjobs.controller.reconcile.clock import backoff_delay
from ftjobs.controller.reconcile.failures import classify
from ftjobs.controller.reconcile.observed import Observed, ObservedJob, PodFailure
from ftjobs.controller.reconcile.plan import Event
from ftjobs.controller.reconcile.state import JobNextState
from ftjobs.render import JOB


def record_success(nxt: JobNextState, current: ObservedJob) -> None:
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
    expire_children(nxt)


def handle_failed_attempt(
    nxt: JobNextState, current: ObservedJob, pods: tuple[PodFailure, ...]
) -> None:
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
            fail(
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
    fail(nxt, reason, msg)


def fail(nxt: JobNextState, reason: str, msg: str) -> None:
    nxt.status.completion_time = nxt.stamp
    nxt.status.next_attempt_time = None
    nxt.condition(ConditionType.RUNNING, False, reason, msg)
    nxt.condition(ConditionType.RESTARTING, False, reason, msg)
    nxt.condition(ConditionType.FAILED, True, reason, msg)
    nxt.phase(Phase.FAILED, msg, Event("Warning", reason, msg[:1024]))
    expire_children(nxt)


def enforce_deadline(nxt: JobNextState, current: ObservedJob | None) -> None:
    limit = nxt.job.spec.active_deadline_seconds
    start = nxt.status.start_time
    if limit is None or start is None:
        return
    due = parse_time(start) + timedelta(seconds=limit)
    if nxt.now < due:
        nxt.requeue_in((due - nxt.now).total_seconds())
        return
    if current is not None and not (current.complete or current.failed_condition):
        nxt.delete.append(JOB.named(current.name))
    fail(nxt, "DeadlineExceeded", f"activeDeadlineSeconds ({limit}s) exceeded")


def cancel(nxt: JobNextState, observed: Observed) -> None:
    for j in observed.jobs:
        if not j.deleting and not (j.complete or j.failed_condition):
            nxt.delete.append(JOB.named(j.name))
    msg = "Cancelled (annotation ftjobs.dev/cancel-requested)"
    nxt.status.completion_time = nxt.stamp
    nxt.status.next_attempt_time = None
    nxt.condition(ConditionType.RUNNING, False, "Cancelled", msg)
    nxt.condition(ConditionType.RESTARTING, False, "Cancelled", msg)
    nxt.condition(ConditionType.FAILED, True, "Cancelled", msg)
    nxt.phase(Phase.CANCELLED, msg, Event("Normal", "Cancelled", msg))
    expire_children(nxt)


def finish(nxt: JobNextState, observed: Observed) -> None:
    """A terminal job: stop stray Jobs (a cancel interrupted mid-way), then the TTL."""
    if nxt.status.phase != Phase.SUCCEEDED.value:
        for j in observed.jobs:
            if not j.deleting and not (j.complete or j.failed_condition):
                nxt.delete.append(JOB.named(j.name))
    expire_children(nxt)
