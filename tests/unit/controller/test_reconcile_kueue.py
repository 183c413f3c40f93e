"""The pure reconcile under Kueue: Kueue's reason in the status, spec.suspend as Workload
deactivation, preemption ending the attempt (a new one resumes, no restart counted),
and the queue-wait time. tests/integration/test_kueue.py runs the same on the real Kueue.
"""

from __future__ import annotations

from datetime import timedelta

from ftjobs.api.job import FineTuneJob
from ftjobs.controller.observe import observe_workload
from ftjobs.controller.reconcile import Observed, ObservedWorkload, WorkloadPatch, reconcile
from ftjobs.render import child_names
from tests.unit.controller.test_reconcile import (
    NAME,
    T0,
    cond,
    created_config,
    jobobj,
    make,
    step,
)

INSUFFICIENT = (
    "couldn't assign flavors to pod set main: insufficient quota for cpu in flavor "
    "cpu-nodes, previously considered podsets requests (0) + current podset request (1) > "
    "maximum capacity (0)"
)
WL = ObservedWorkload(name="job-demo-1-abcde", pending_message=INSUFFICIENT)


def queued_then_running() -> FineTuneJob:
    job, _ = step(make(queueName="team-a"), Observed(), T0)
    job, _ = step(job, Observed((jobobj(suspended=True),), workload=WL), T0)
    admitted = ObservedWorkload(name=WL.name, admitted=True, cluster_queue="cq")
    job, _ = step(job, Observed((jobobj(active=1, ready=1),), workload=admitted), T0)
    assert job.status and job.status.phase == "Running"
    return job


def test_queued_job_shows_kueues_reason_and_looks_again() -> None:
    job, _ = step(make(queueName="team-a"), Observed(), T0)
    job, plan = step(job, Observed((jobobj(suspended=True),), workload=WL), T0)
    assert job.status and job.status.phase == "Queued"
    assert job.status.message == f"Waiting for admission by Kueue queue team-a: {INSUFFICIENT}"
    assert cond(job, "Queued") == ("True", "AwaitingAdmission")
    assert not plan.job_patches and not plan.workload_patches
    # Kueue's message changes without an event the controller watches.
    assert plan.requeue_after == 15


def test_admission_reports_the_time_spent_in_the_queue() -> None:
    job, _ = step(make(queueName="team-a"), Observed(), T0)
    later = T0 + timedelta(seconds=42)
    admitted = ObservedWorkload(name=WL.name, admitted=True, cluster_queue="cq")
    plan = reconcile(job, Observed((jobobj(active=1, ready=1),), workload=admitted), later)
    assert plan.queue_wait_seconds == 42
    assert plan.status and plan.status["phase"] == "Running"


def test_suspend_under_kueue_deactivates_the_workload_never_the_job() -> None:
    job = queued_then_running()
    job = make(queueName="team-a", suspend=True).model_copy(update={"status": job.status})
    admitted = ObservedWorkload(name=WL.name, admitted=True, cluster_queue="cq")
    job, plan = step(job, Observed((jobobj(active=1, ready=1),), workload=admitted), T0)
    assert plan.workload_patches == (WorkloadPatch(WL.name, active=False),)
    assert not plan.job_patches, "Kueue owns the Job's suspend; it would undo ours"
    assert job.status and job.status.phase == "Queued"
    assert cond(job, "Suspended") == ("True", "Suspended")


def test_preempted_attempt_waits_for_its_pods_then_a_new_attempt_resumes() -> None:
    job = queued_then_running()
    evicted = ObservedWorkload(
        name=WL.name, evicted_reason="Preempted", evicted_message="Preempted to accommodate x"
    )
    # Kueue suspended the Job; its pod is still stopping (checkpointing).
    job, plan = step(job, Observed((jobobj(suspended=True, active=1),), workload=evicted), T0)
    assert plan.workload_patches == (WorkloadPatch(WL.name, active=False),)
    assert not plan.create and plan.requeue_after == 2
    assert job.status and job.status.phase == "Queued" and job.status.restarts == 0
    assert cond(job, "Running") == ("False", "Preempted")
    # Pods gone: attempt 2, queued, resuming; not a restart.
    inactive = ObservedWorkload(name=WL.name, active=False, evicted_reason="Preempted")
    job, plan = step(job, Observed((jobobj(suspended=True),), workload=inactive), T0)
    batch = next(o for o in plan.create if o["kind"] == "Job")
    assert batch["metadata"]["name"] == child_names(NAME, 2).job
    assert batch["spec"]["suspend"] is True
    assert created_config(plan)["resume"] is True
    assert job.status and job.status.attempt == 2 and job.status.restarts == 0
    assert job.status.phase == "Queued"
    assert "Preempted" in [e.reason for e in plan.events]


def test_negative_control_the_same_job_without_an_eviction_stays_queued() -> None:
    # A Job suspended because it was never admitted is not an ended attempt.
    job, _ = step(make(queueName="team-a"), Observed(), T0)
    job, plan = step(job, Observed((jobobj(suspended=True),), workload=WL), T0)
    assert not plan.create and job.status and job.status.attempt == 1


def test_resume_after_suspend_under_kueue_is_a_new_attempt() -> None:
    job = queued_then_running()
    job = make(queueName="team-a", suspend=True).model_copy(update={"status": job.status})
    deactivated = ObservedWorkload(name=WL.name, active=False, evicted_reason="Deactivated")
    job, plan = step(job, Observed((jobobj(suspended=True),), workload=deactivated), T0)
    assert not plan.create, "no new attempt while spec.suspend is true"
    assert job.status and job.status.phase == "Queued"
    job = make(queueName="team-a", suspend=False).model_copy(update={"status": job.status})
    job, plan = step(job, Observed((jobobj(suspended=True),), workload=deactivated), T0)
    assert not plan.workload_patches, "the stopped attempt's Workload stays inactive"
    assert job.status and job.status.attempt == 2 and job.status.restarts == 0


def test_observe_workload_reads_kueues_conditions() -> None:
    wl = observe_workload(
        {
            "metadata": {"name": "job-demo-1-abcde"},
            "spec": {"active": False},
            "status": {
                "conditions": [
                    {"type": "QuotaReserved", "status": "False", "message": INSUFFICIENT},
                    {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "m"},
                    {"type": "Admitted", "status": "False"},
                ]
            },
        }
    )
    assert wl == ObservedWorkload(
        name="job-demo-1-abcde",
        active=False,
        admitted=False,
        pending_message=INSUFFICIENT,
        evicted_reason="Preempted",
        evicted_message="m",
    )
    assert observe_workload({"metadata": {"name": "w"}}).active is True


def test_the_queue_wait_goes_into_the_histogram() -> None:
    from prometheus_client import REGISTRY

    from ftjobs.controller.handlers import _count
    from ftjobs.controller.reconcile import Plan

    def observed() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("ftjobs_queue_wait_seconds_count") or 0.0
        total = REGISTRY.get_sample_value("ftjobs_queue_wait_seconds_sum") or 0.0
        return count, total

    before = observed()
    _count(Plan())  # negative control: no admission, nothing recorded
    assert observed() == before
    _count(Plan(queue_wait_seconds=42.0))
    assert observed() == (before[0] + 1, before[1] + 42.0)


def test_queue_priority_class_labels_the_job_and_needs_a_queue() -> None:
    import pytest
    from pydantic import ValidationError

    from ftjobs.api.constants import LABEL_KUEUE_PRIORITY

    _, plan = step(make(queueName="team-a", queuePriorityClass="ftjobs-urgent"), Observed(), T0)
    batch = next(o for o in plan.create if o["kind"] == "Job")
    assert batch["metadata"]["labels"][LABEL_KUEUE_PRIORITY] == "ftjobs-urgent"
    pod_labels = batch["spec"]["template"]["metadata"]["labels"]
    assert LABEL_KUEUE_PRIORITY not in pod_labels
    with pytest.raises(ValidationError, match="queuePriorityClass needs queueName"):
        make(queuePriorityClass="ftjobs-urgent")
