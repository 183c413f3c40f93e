"""Table tests of the pure reconcile: every transition, backoff, and idempotence.

Each step feeds reconcile a FineTuneJob and what exists, applies the plan's status and
annotation patches to the job (as the API server would) and checks the next reconcile
of the same state plans nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ftjobs.api.constants import (
    CONFIG_MAX_BYTES,
    EXIT_PERMANENT,
    EXIT_RETRIABLE,
    LABEL_ATTEMPT,
    LABEL_KUEUE_QUEUE,
)
from ftjobs.api.job import FineTuneJob
from ftjobs.api.status import FineTuneJobStatus, Progress
from ftjobs.controller.reconcile import (
    ANNOTATION_CANCEL,
    ANNOTATION_CHILDREN_DELETED,
    JobPatch,
    ObjectRef,
    Observed,
    ObservedJob,
    Plan,
    PodFailure,
    PodWaiting,
    backoff_delay,
    classify,
    reconcile,
    reconcile_invalid,
)
from ftjobs.render import child_names
from ftjobs.render.config import stored_config

T0 = datetime(2026, 11, 29, 4, 0, 0, tzinfo=UTC)
NAME = "demo"


def make(**spec: Any) -> FineTuneJob:
    doc: dict[str, Any] = {
        "apiVersion": "ftjobs.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": NAME, "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "task": "sequence-classification",
            "model": {"uri": "hf://prajjwal1/bert-tiny"},
            "dataset": {"train": "s3://data/train.jsonl", "fields": {"text": "t", "label": "l"}},
            "hyperparameters": {"maxSteps": 10, "globalBatchSize": 8, "microBatchSize": 8},
            "storage": {"output": "s3://out/runs"},
            **spec,
        },
    }
    return FineTuneJob.model_validate(doc)


def applied(job: FineTuneJob, plan: Plan) -> FineTuneJob:
    """The job after the API server stored the plan's patches."""
    doc = job.model_dump(by_alias=True, mode="json", exclude_none=True)
    status = doc.get("status") or {}
    for key, value in (plan.status or {}).items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    doc["status"] = status
    ann = doc["metadata"].setdefault("annotations", {})
    for key, v in plan.annotations.items():
        if v is None:
            ann.pop(key, None)
        else:
            ann[key] = v
    return FineTuneJob.model_validate(doc)


def jobobj(attempt: int = 1, **kw: Any) -> ObservedJob:
    return ObservedJob(name=child_names(NAME, attempt).job, attempt=attempt, **kw)


def step(job: FineTuneJob, observed: Observed, now: datetime) -> tuple[FineTuneJob, Plan]:
    """Reconcile, apply, and check that reconciling the result again plans nothing."""
    plan = reconcile(job, observed, now)
    after = applied(job, plan)
    # What exists after the plan ran: the Jobs it created, without those it deleted.
    gone = {r.name for r in plan.delete if r.kind == "Job"}
    suspend = {p.name: p.suspend for p in plan.job_patches}
    jobs = [
        replace(j, suspended=suspend.get(j.name, j.suspended))
        for j in observed.jobs
        if j.name not in gone
    ] + [
        ObservedJob(
            name=o["metadata"]["name"],
            attempt=int(o["metadata"]["labels"][LABEL_ATTEMPT]),
            suspended=bool(o["spec"].get("suspend")),
        )
        for o in plan.create
        if o["kind"] == "Job"
    ]
    wl = observed.workload
    for wp in plan.workload_patches:
        assert wl is not None and wp.name == wl.name
        wl = replace(wl, active=wp.active)
    if any(o["kind"] == "Job" for o in plan.create):
        wl = None  # the Workload observed is the current attempt's: a new Job has none yet
    observed = Observed(
        tuple(jobs), observed.pod_failures, observed.pod_waiting, observed.parent, wl
    )
    again = reconcile(after, observed, now)
    assert again.empty, f"not idempotent: {again}"
    return after, plan


def created_kinds(plan: Plan) -> list[str]:
    return [o["kind"] for o in plan.create]


def created_config(plan: Plan) -> dict[str, Any]:
    """The trainer config the plan's new Job carries (its pod-template annotation)."""
    batch = next(o for o in plan.create if o["kind"] == "Job")
    return dict(json.loads(stored_config(batch)))


def cond(job: FineTuneJob, ctype: str) -> tuple[str, str] | None:
    assert job.status is not None
    for c in job.status.conditions:
        if c.type == ctype:
            return c.status, c.reason
    return None


def started(**spec: Any) -> FineTuneJob:
    """A job whose attempt 1 exists."""
    job, _ = step(make(**spec), Observed(), T0)
    return job


def running(**spec: Any) -> FineTuneJob:
    job, _ = step(started(**spec), Observed((jobobj(active=1, ready=1),)), T0)
    assert job.status and job.status.phase == "Running"
    return job


# --- creation and the happy path ----------------------------------------------------------


def test_new_job_creates_attempt_one_and_records_it() -> None:
    job, plan = step(make(), Observed(), T0)
    kinds = created_kinds(plan)
    assert kinds[-1] == "Job", "the Job is created last, after what it mounts"
    assert {"Service", "Job", "ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    assert "ConfigMap" not in kinds  # the Job carries the config
    assert job.status and job.status.phase == "Pending" and job.status.attempt == 1
    assert cond(job, "Created") == ("True", "JobCreated")
    assert [e.reason for e in plan.events] == ["Created"]
    assert created_config(plan)["attempt"] == 1


def test_pods_ready_means_running_with_a_start_time() -> None:
    job = started()
    pending, plan = step(job, Observed((jobobj(active=1, ready=0),)), T0)
    assert plan.empty and pending.status and pending.status.phase == "Pending"
    job, plan = step(
        job,
        Observed((jobobj(active=1, ready=1, start_time="2026-11-29T04:00:05Z"),)),
        T0 + timedelta(seconds=9),
    )
    assert job.status and job.status.phase == "Running"
    assert job.status.start_time == "2026-11-29T04:00:05Z"
    assert cond(job, "Running") == ("True", "PodsReady")
    assert [e.reason for e in plan.events] == ["Running"]


def test_complete_job_succeeds_with_times_and_output_model() -> None:
    job = running()
    done = jobobj(complete=True, succeeded=1, completion_time="2026-11-29T05:00:00Z")
    job, plan = step(job, Observed((done,)), T0 + timedelta(hours=1))
    assert job.status and job.status.phase == "Succeeded"
    assert job.status.completion_time == "2026-11-29T05:00:00Z"
    assert job.status.output_model == "s3://out/runs/ns/demo/model"
    assert cond(job, "Succeeded") == ("True", "Completed")
    assert cond(job, "Running") == ("False", "Completed")
    assert [e.reason for e in plan.events] == ["Succeeded"]
    assert not plan.create and not plan.delete


def test_status_patches_never_touch_trainer_fields() -> None:
    job = started()
    job.status = (job.status or FineTuneJobStatus()).model_copy(
        update={"progress": Progress(step=5, total_steps=10)}
    )
    for observed in (
        Observed((jobobj(active=1, ready=1),)),
        Observed((jobobj(complete=True),)),
    ):
        plan = reconcile(job, observed, T0)
        assert plan.status is not None
        assert not {"progress", "latestCheckpoint", "metrics"} & set(plan.status)


# --- failures, backoff, restarts ----------------------------------------------------------


def failed(attempt: int = 1, *pods: PodFailure) -> Observed:
    return Observed(
        (jobobj(attempt, failed_condition=True, failed=1, failure_reason="PodFailurePolicy"),), pods
    )


def test_retriable_exit_restarts_after_backoff_and_resumes() -> None:
    job = running()
    obs = failed(1, PodFailure("demo-1-0", EXIT_RETRIABLE, "lost peer"))
    job, plan = step(job, obs, T0)
    assert job.status and job.status.phase == "Restarting" and job.status.restarts == 1
    assert job.status.next_attempt_time == "2026-11-29T04:00:10Z"
    assert plan.requeue_after == 10 and not plan.create
    assert cond(job, "Restarting") == ("True", "RetriableFailure")
    assert [e.reason for e in plan.events] == ["Restarting"]
    # Before the backoff ends: nothing, but come back at the right time.
    early = reconcile(job, obs, T0 + timedelta(seconds=4))
    assert early.empty and early.requeue_after == 6
    job, plan = step(job, obs, T0 + timedelta(seconds=10))
    assert created_kinds(plan)[-1] == "Job"
    new_job = next(o for o in plan.create if o["kind"] == "Job")
    assert new_job["metadata"]["name"] == child_names(NAME, 2).job
    resolved = created_config(plan)
    assert resolved["attempt"] == 2 and resolved["resume"] is True
    assert job.status and job.status.attempt == 2 and job.status.phase == "Pending"
    assert job.status.next_attempt_time is None
    assert cond(job, "Restarting") == ("False", "AttemptCreated")
    assert job.status.restarts == 1


@pytest.mark.parametrize(
    ("restarts", "expected"), [(0, 10), (1, 20), (2, 40), (5, 320), (6, 600), (40, 600)]
)
def test_backoff_doubles_and_is_capped(restarts: int, expected: int) -> None:
    assert backoff_delay(10, 600, restarts) == expected


def test_second_failure_waits_twice_as_long() -> None:
    job = running(failurePolicy={"maxRestarts": 3, "backoffSeconds": 5})
    job = applied(job, Plan(status={"restarts": 1, "attempt": 2}))
    obs = Observed(
        (
            jobobj(1, failed_condition=True),
            jobobj(2, failed_condition=True, failure_reason="PodFailurePolicy"),
        ),
        (PodFailure("demo-2-0", EXIT_RETRIABLE),),
    )
    job, plan = step(job, obs, T0)
    assert plan.requeue_after == 10 and job.status and job.status.restarts == 2


def test_permanent_exit_fails_at_once_with_the_termination_message() -> None:
    job = running()
    obs = failed(1, PodFailure("demo-1-0", EXIT_PERMANENT, "dataset.fields.text: no column 't'"))
    job, plan = step(job, obs, T0)
    assert job.status and job.status.phase == "Failed" and job.status.restarts == 0
    assert cond(job, "Failed") == ("True", "PermanentFailure")
    assert "no column 't'" in (job.status.message or "")
    assert "no column 't'" in job.status.conditions[-1].message
    assert job.status.completion_time == "2026-11-29T04:00:00Z"
    assert not plan.create and plan.requeue_after is None
    # Terminal: nothing more, ever (no TTL set).
    assert reconcile(job, obs, T0 + timedelta(days=1)).empty


def test_restarts_exhausted_fails() -> None:
    job = running(failurePolicy={"maxRestarts": 1})
    job = applied(job, Plan(status={"restarts": 1}))
    job, _plan = step(job, failed(1, PodFailure("demo-1-0", EXIT_RETRIABLE, "preempted")), T0)
    assert job.status and job.status.phase == "Failed"
    assert cond(job, "Failed") == ("True", "RestartsExhausted")
    assert "preempted" in (job.status.message or "")


def test_zero_max_restarts_fails_on_first_retriable_failure() -> None:
    job = running(failurePolicy={"maxRestarts": 0})
    job, _ = step(job, failed(1, PodFailure("p", EXIT_RETRIABLE)), T0)
    assert job.status and job.status.phase == "Failed"


@pytest.mark.parametrize(
    ("pod", "retriable", "reason"),
    [
        (PodFailure("p", EXIT_RETRIABLE), True, "RetriableFailure"),
        (PodFailure("p", EXIT_PERMANENT), False, "PermanentFailure"),
        (PodFailure("p", 1, "Traceback ..."), False, "PermanentFailure"),
        (PodFailure("p", 137, reason="OOMKilled"), False, "OOMKilled"),
        (PodFailure("p", 137, reason="Error"), True, "PodKilled"),
        (
            PodFailure("p", 143, reason="Error", disruption="PreemptionByScheduler"),
            True,
            "PodDisrupted",
        ),
        (PodFailure("p", None, "The node was low on resource", "Evicted"), True, "PodDisrupted"),
        (PodFailure("p", None, disruption="DeletionByTaintManager"), True, "PodDisrupted"),
    ],
)
def test_classification(pod: PodFailure, retriable: bool, reason: str) -> None:
    failure = classify(jobobj(failed_condition=True), (pod,))
    assert (failure.retriable, failure.reason) == (retriable, reason)


def test_permanent_pod_wins_over_retriable_peer() -> None:
    pods = (PodFailure("a", EXIT_RETRIABLE), PodFailure("b", EXIT_PERMANENT, "bad config"))
    assert not classify(jobobj(failed_condition=True), pods).retriable


def test_classification_from_job_condition_when_pods_are_gone() -> None:
    job = jobobj(
        failed_condition=True,
        failure_reason="PodFailurePolicy",
        failure_message="Container trainer for pod ns/demo-1-0-x failed with exit "
        "code 78 matching FailJob rule at index 0",
    )
    assert not classify(job, ()).retriable
    job = jobobj(
        failed_condition=True,
        failure_reason="PodFailurePolicy",
        failure_message="... failed with exit code 75 matching FailJob rule",
    )
    assert classify(job, ()).retriable


# --- crash safety -------------------------------------------------------------------------


def test_job_created_but_not_recorded_is_adopted_not_duplicated() -> None:
    job = running()
    job, _ = step(job, failed(1, PodFailure("p", EXIT_RETRIABLE)), T0)
    # The controller created attempt 2's Job, then died before patching status.
    obs = Observed((jobobj(1, failed_condition=True), jobobj(2)))
    job, plan = step(job, obs, T0 + timedelta(seconds=30))
    # No second Job; the Job's stage-mates, which the crash may have cut off, are created
    # (or adopted, when they exist).
    assert sorted(created_kinds(plan)) == ["NetworkPolicy", "Service"]
    assert {o["metadata"]["name"] for o in plan.create} == {"demo-2"}
    assert job.status and job.status.attempt == 2 and job.status.phase == "Pending"
    assert job.status.restarts == 1
    assert cond(job, "Restarting") == ("False", "AttemptCreated")


def test_vanished_job_of_current_attempt_is_recreated() -> None:
    job = running()
    plan = reconcile(job, Observed(), T0)
    assert created_kinds(plan)[-1] == "Job"
    assert next(o for o in plan.create if o["kind"] == "Job")["metadata"]["name"] == "demo-1"


def test_attempts_older_than_the_previous_one_are_pruned() -> None:
    job = running()
    job = applied(job, Plan(status={"attempt": 3, "restarts": 2}))
    obs = Observed(
        (
            jobobj(1, failed_condition=True),
            jobobj(2, failed_condition=True),
            jobobj(3, active=1, ready=1),
        )
    )
    plan = reconcile(job, obs, T0)
    assert ObjectRef("batch/v1", "Job", child_names(NAME, 1).job) in plan.delete
    assert all(child_names(NAME, 2).job != r.name for r in plan.delete)


# --- suspend, Kueue, cancel, deadline, TTL ------------------------------------------------


def test_suspend_and_resume() -> None:
    job = running()
    job = make(suspend=True).model_copy(update={"status": job.status})
    job, plan = step(job, Observed((jobobj(active=1, ready=1),)), T0)
    assert plan.job_patches == (JobPatch(child_names(NAME, 1).job, suspend=True),)
    assert job.status and job.status.phase == "Queued"
    assert cond(job, "Suspended") == ("True", "Suspended")
    assert cond(job, "Running") == ("False", "Suspended")
    # Suspended Job observed: steady.
    job, plan = step(job, Observed((jobobj(suspended=True),)), T0)
    assert plan.empty
    job = make(suspend=False).model_copy(update={"status": job.status})
    # Its pods are still stopping (checkpointing): nothing starts yet.
    waiting, plan = step(job, Observed((jobobj(suspended=True, active=1),)), T0)
    assert not plan.create and not plan.job_patches
    assert waiting.status and waiting.status.phase == "Queued"
    # The attempt ran, and its config starts clean: attempt 2 resumes from LATEST.
    job, plan = step(job, Observed((jobobj(suspended=True),)), T0)
    assert not plan.job_patches
    config = created_config(plan)
    assert config["attempt"] == 2 and config["resume"] is True
    assert job.status and job.status.phase == "Pending" and job.status.restarts == 0
    assert cond(job, "Suspended") == ("False", "Resumed")
    assert "Resumed" in [e.reason for e in plan.events]


def test_resume_of_an_attempt_that_never_ran_unsuspends_the_same_job() -> None:
    job, plan = step(make(suspend=True), Observed(), T0)
    job = make(suspend=False).model_copy(update={"status": job.status})
    job, plan = step(job, Observed((jobobj(suspended=True),)), T0)
    assert plan.job_patches == (JobPatch(child_names(NAME, 1).job, suspend=False),)
    assert not plan.create
    assert job.status and job.status.phase == "Pending" and job.status.restarts == 0
    assert cond(job, "Suspended") == ("False", "Resumed")
    assert [e.reason for e in plan.events] == ["Resumed"]


def test_created_suspended_when_spec_says_so() -> None:
    job, plan = step(make(suspend=True), Observed(), T0)
    batch = next(o for o in plan.create if o["kind"] == "Job")
    assert batch["spec"]["suspend"] is True
    assert job.status and job.status.phase == "Queued"


def test_kueue_waits_for_admission_and_preemption_is_not_a_restart() -> None:
    job, plan = step(make(queueName="team-a"), Observed(), T0)
    batch = next(o for o in plan.create if o["kind"] == "Job")
    assert batch["spec"]["suspend"] is True
    assert batch["metadata"]["labels"][LABEL_KUEUE_QUEUE] == "team-a"
    assert job.status and job.status.phase == "Queued"
    assert cond(job, "Queued") == ("True", "AwaitingAdmission")
    # Waiting: the controller never unsuspends a queued Job itself.
    job, plan = step(job, Observed((jobobj(suspended=True),)), T0)
    assert plan.empty
    # Kueue admits (unsuspends): Running.
    job, plan = step(job, Observed((jobobj(active=1, ready=1),)), T0)
    assert job.status and job.status.phase == "Running"
    assert cond(job, "Queued") == ("False", "Admitted")
    # Kueue preempts (suspends again): back to Queued, no restart counted.
    job, plan = step(job, Observed((jobobj(suspended=True),)), T0)
    assert job.status and job.status.phase == "Queued" and job.status.restarts == 0
    assert not plan.job_patches and not plan.create


def test_cancel_deletes_jobs_and_keeps_the_record() -> None:
    job = running()
    job = job.model_copy(
        update={
            "metadata": job.metadata.model_copy(
                update={"annotations": {ANNOTATION_CANCEL: "by alice"}}
            )
        }
    )
    job, plan = step(job, Observed((jobobj(active=1, ready=1),)), T0)
    assert plan.delete == (ObjectRef("batch/v1", "Job", child_names(NAME, 1).job),)
    assert job.status and job.status.phase == "Cancelled"
    assert cond(job, "Failed") == ("True", "Cancelled")
    assert job.status.completion_time is not None
    # The Job is being deleted: nothing more to do.
    assert reconcile(job, Observed((jobobj(active=1, deleting=True),)), T0).empty


def test_active_deadline_fails_and_stops_the_job() -> None:
    job = running(activeDeadlineSeconds=60)
    assert job.status and job.status.start_time == "2026-11-29T04:00:00Z"
    obs = Observed((jobobj(active=1, ready=1),))
    plan = reconcile(job, obs, T0 + timedelta(seconds=20))
    assert plan.empty and plan.requeue_after == 40
    job, plan = step(job, obs, T0 + timedelta(seconds=61))
    assert job.status and job.status.phase == "Failed"
    assert cond(job, "Failed") == ("True", "DeadlineExceeded")
    assert ObjectRef("batch/v1", "Job", child_names(NAME, 1).job) in plan.delete


def test_ttl_deletes_children_once_and_never_outputs() -> None:
    job = running(ttlSecondsAfterFinished=300)
    done = Observed((jobobj(complete=True, completion_time="2026-11-29T04:10:00Z"),))
    job, plan = step(job, done, T0 + timedelta(minutes=10))
    assert plan.requeue_after == 300 and not plan.delete
    job, plan = step(job, done, T0 + timedelta(minutes=15))
    names = child_names(NAME, 1)
    deleted = {(r.kind, r.name) for r in plan.delete}
    assert {
        ("Service", names.service),
        ("NetworkPolicy", names.network_policy),
        ("Job", names.job),
        ("ServiceAccount", names.service_account),
        ("Role", names.role),
        ("RoleBinding", names.role_binding),
    } == deleted
    assert ANNOTATION_CHILDREN_DELETED in job.metadata.annotations
    assert job.status and job.status.phase == "Succeeded"


# --- invalid objects ----------------------------------------------------------------------


def test_invalid_object_fails_once_with_a_reason() -> None:
    plan = reconcile_invalid(None, 3, "spec.model.uri: bad", T0)
    assert plan.status is not None
    assert plan.status["phase"] == "Failed"
    assert plan.status["conditions"][0]["reason"] == "InvalidSpec"
    assert plan.status["observedGeneration"] == 3
    status = FineTuneJobStatus.model_validate(plan.status)
    assert reconcile_invalid(status, 3, "spec.model.uri: bad", T0).empty


def test_a_config_too_large_for_the_job_fails_at_once_creating_nothing() -> None:
    # The Job would carry it in an annotation the API server refuses past 256 KiB.
    huge = make(deepspeed={"overrides": {"filler": "a" * CONFIG_MAX_BYTES}})
    job, plan = step(huge, Observed(), T0)
    assert not plan.create
    assert job.status and job.status.phase == "Failed"
    assert cond(job, "Failed") == ("True", "ConfigTooLarge")
    [event] = plan.events
    assert event.reason == "ConfigTooLarge" and "spec.deepspeed" in event.message
    # Negative control: the same job with a small override starts.
    small = make(deepspeed={"overrides": {"filler": "a"}})
    _, plan = step(small, Observed(), T0)
    assert created_config(plan)["spec"]["deepspeed"]["overrides"] == {"filler": "a"}


def test_observed_generation_follows_the_spec() -> None:
    job = running()
    job = job.model_copy(update={"metadata": job.metadata.model_copy(update={"generation": 2})})
    plan = reconcile(job, Observed((jobobj(active=1, ready=1),)), T0)
    assert plan.status == {"observedGeneration": 2}


def test_job_deadline_is_permanent_even_if_pods_exited_retriably() -> None:
    job = jobobj(
        failed_condition=True,
        failure_reason="DeadlineExceeded",
        failure_message="Job was active longer than specified deadline",
    )
    failure = classify(job, (PodFailure("p", EXIT_RETRIABLE, "SIGTERM"),))
    assert (failure.retriable, failure.reason) == (False, "DeadlineExceeded")


# --- repeated failures --------------------------------------------------------------------

OOM_LIKE = "RuntimeError: CUDA error at step {step}: illegal memory access at 0x{addr:x}"


def fail_attempts(job: FineTuneJob, messages: list[str], t: datetime = T0) -> FineTuneJob:
    """Attempts 1..n each fail with exit 75 and the given message (after their backoff)."""
    for i, message in enumerate(messages, start=1):
        job, _ = step(job, failed(i, PodFailure(f"demo-{i}-0", EXIT_RETRIABLE, message)), t)
        if job.status and job.status.phase == "Failed":
            return job
        t = t + timedelta(hours=1)
        job, _ = step(job, failed(i, PodFailure(f"demo-{i}-0", EXIT_RETRIABLE, message)), t)
    return job


def test_the_same_failure_on_n_attempts_stops_the_retries() -> None:
    job = running(failurePolicy={"maxRestarts": 10, "maxRepeatedFailures": 3})
    # Numbers (step, address) differ between attempts: still the same failure.
    messages = [OOM_LIKE.format(step=s, addr=a) for s, a in ((7, 0xBEEF), (8, 0xCAFE), (7, 1))]
    job = fail_attempts(job, messages)
    assert job.status and job.status.phase == "Failed", job.status
    assert cond(job, "Failed") == ("True", "RepeatedFailure")
    assert job.status.restarts == 2 and job.status.attempt == 3
    assert "attempts 1-3 failed the same way" in (job.status.message or "")
    assert "maxRepeatedFailures 3" in (job.status.message or "")
    assert "illegal memory access" in (job.status.message or "")
    assert job.status.last_failure and job.status.last_failure.attempts == 3


def test_negative_control_different_failures_keep_retrying() -> None:
    job = running(failurePolicy={"maxRestarts": 10, "maxRepeatedFailures": 2})
    job = fail_attempts(job, ["lost peer 10.0.0.1", "disk full", "lost peer 10.0.0.2"])
    assert job.status and job.status.phase == "Pending" and job.status.restarts == 3
    assert job.status.last_failure and job.status.last_failure.attempts == 1


def test_a_new_checkpoint_between_failures_restarts_the_count() -> None:
    job = running(failurePolicy={"maxRestarts": 10, "maxRepeatedFailures": 2})
    job = fail_attempts(job, ["node went away"])
    assert job.status and job.status.last_failure and job.status.last_failure.attempts == 1
    # Attempt 2 commits a checkpoint (the trainer's status field), then fails the same way.
    job = applied(job, Plan(status={"latestCheckpoint": {"step": 50, "uri": "s3://o/c"}}))
    job, _ = step(job, failed(2, PodFailure("demo-2-0", EXIT_RETRIABLE, "node went away")), T0)
    assert job.status and job.status.phase == "Restarting"
    assert job.status.last_failure and job.status.last_failure.attempts == 1
    assert job.status.last_failure.checkpoint_step == 50


def test_stops_by_signal_and_disruptions_are_not_counted() -> None:
    job = running(failurePolicy={"maxRestarts": 10, "maxRepeatedFailures": 2})
    job = fail_attempts(job, ["Stopped: stopped by SIGTERM at step 4"] * 3)
    assert job.status and job.status.phase == "Pending" and job.status.last_failure is None


def test_signature_ignores_pod_names_and_order() -> None:
    a = (PodFailure("x-1-0", EXIT_RETRIABLE, "boom 1"), PodFailure("x-1-1", EXIT_RETRIABLE, "peer"))
    b = (PodFailure("x-2-1", EXIT_RETRIABLE, "peer"), PodFailure("x-2-0", EXIT_RETRIABLE, "boom 2"))
    job = jobobj(failed_condition=True)
    assert (
        classify(job, a).signature
        == classify(job, b).signature
        == "exit 75: boom # | exit 75: peer"
    )


# --- pods stuck before starting -----------------------------------------------------------


def stuck(*waiting: PodWaiting, ready: int = 0) -> Observed:
    return Observed((jobobj(active=1, ready=ready),), pod_waiting=waiting)


def test_a_stuck_pod_shows_its_reason_then_fails_after_the_startup_timeout() -> None:
    job = started(startupTimeout="2m")
    why = PodWaiting("demo-1-0-abc", "CreateContainerConfigError", 'secret "s3" not found')
    job, plan = step(job, stuck(why), T0)
    assert job.status and job.status.phase == "Pending"
    assert cond(job, "PodsWaiting") == ("True", "CreateContainerConfigError")
    assert 'secret "s3" not found' in (job.status.message or "")
    assert "2026-11-29T04:02:00Z" in (job.status.message or "")  # when it will fail
    assert [e.reason for e in plan.events] == ["CreateContainerConfigError"]
    assert plan.requeue_after == 120
    # The kubelet's reason changes, the clock does not restart.
    pulled = PodWaiting("demo-1-0-abc", "ImagePullBackOff", "Back-off pulling image")
    job, plan = step(job, stuck(pulled), T0 + timedelta(seconds=60))
    assert cond(job, "PodsWaiting") == ("True", "ImagePullBackOff")
    assert plan.requeue_after == 60
    job, plan = step(job, stuck(pulled), T0 + timedelta(seconds=120))
    assert job.status and job.status.phase == "Failed"
    assert cond(job, "Failed") == ("True", "ImagePullBackOff")
    assert "did not start within spec.startupTimeout 2m" in (job.status.message or "")
    assert [r.name for r in plan.delete] == [child_names(NAME, 1).job]


def test_negative_control_pods_that_start_in_time_clear_the_condition() -> None:
    job = started(startupTimeout="2m")
    job, _ = step(job, stuck(PodWaiting("p", "Unschedulable", "0/3 nodes are available")), T0)
    assert cond(job, "PodsWaiting") == ("True", "Unschedulable")
    later = T0 + timedelta(seconds=90)
    job, _ = step(job, Observed((jobobj(active=1, ready=0),)), later)  # scheduled, creating
    assert cond(job, "PodsWaiting") == ("False", "PodsStarting")
    job, _ = step(job, Observed((jobobj(active=1, ready=1),)), T0 + timedelta(minutes=10))
    assert job.status and job.status.phase == "Running"
    assert cond(job, "PodsWaiting") == ("False", "PodsReady")


def test_startup_timeout_default_and_validation() -> None:
    assert make().spec.startup_timeout == "10m"
    for bad in ("0s", "10", "1d", "-5m", "10 m"):
        with pytest.raises(ValueError, match="startupTimeout"):
            make(startupTimeout=bad)
