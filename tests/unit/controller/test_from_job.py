"""spec.model.fromJob in the pure reconcile: wait for the parent, start from its model,
fail with the field path when it can never be used, and keep the resolution for retries."""

from __future__ import annotations

from typing import Any

import pytest

from ftjobs.api.parent import ObservedParent, ParentJob, Unusable, Wait, judge
from ftjobs.controller.reconcile import Observed, reconcile
from tests.unit.controller.test_reconcile import (
    T0,
    applied,
    cond,
    created_config,
    make,
    step,
)

PARENT_MODEL = "s3://out/runs/ns/run-a/model"


def child() -> Any:
    return make(model={"fromJob": "run-a"})


def seen(phase: str | None = "Succeeded", *, found: bool = True) -> Observed:
    return Observed(parent=ObservedParent("run-a", found, phase, PARENT_MODEL))


def test_succeeded_parent_is_the_base_model_of_the_trainer() -> None:
    job, plan = step(child(), seen(), T0)
    config = created_config(plan)
    assert config["spec"]["model"]["uri"] == PARENT_MODEL
    assert config["spec"]["model"]["fromJob"] is None
    assert config["parent"] == {"name": "run-a", "namespace": "ns", "uri": PARENT_MODEL}
    assert job.status is not None and job.status.base_model == PARENT_MODEL
    assert any(e.reason == "FromJob" and PARENT_MODEL in e.message for e in plan.events)


@pytest.mark.parametrize("phase", [None, "Pending", "Running", "Restarting", "Queued"])
def test_unfinished_parent_keeps_the_job_pending_and_looks_again(phase: str | None) -> None:
    job, plan = step(child(), seen(phase), T0)
    assert not plan.create
    assert plan.requeue_after is not None
    assert job.status is not None and job.status.phase == "Pending"
    assert job.status.message and job.status.message.startswith("spec.model.fromJob:")
    # Once it succeeds, the next reconcile starts attempt 1 from its model.
    job, plan = step(job, seen(), T0)
    assert created_config(plan)["spec"]["model"]["uri"] == PARENT_MODEL


@pytest.mark.parametrize(
    ("observed", "words"),
    [
        (seen(found=False), "not found in namespace 'ns'"),
        (seen("Failed"), "ended Failed"),
        (seen("Cancelled"), "ended Cancelled"),
        (Observed(parent=ObservedParent("run-a", True, "Succeeded", None)), "no outputModel"),
    ],
)
def test_unusable_parent_fails_the_job_naming_the_field(observed: Observed, words: str) -> None:
    job, plan = step(child(), observed, T0)
    assert not plan.create
    assert job.status is not None and job.status.phase == "Failed"
    assert cond(job, "Failed") == ("True", "FromJobUnusable")
    failed = next(c for c in job.status.conditions if c.type == "Failed")
    assert failed.message.startswith("spec.model.fromJob: ") and words in failed.message


def test_retries_use_the_recorded_model_without_reading_the_parent() -> None:
    job, _ = step(child(), seen(), T0)
    # Attempt 1's Job vanished; the parent is gone too (deleted): recreate from status.
    plan = reconcile(job, Observed(parent=None), T0)
    assert created_config(plan)["spec"]["model"]["uri"] == PARENT_MODEL
    assert applied(job, plan).status is not None


def test_a_parent_not_read_waits_rather_than_guessing() -> None:
    plan = reconcile(child(), Observed(), T0)
    assert not plan.create and plan.requeue_after is not None


def test_a_job_without_from_job_never_needs_a_parent() -> None:
    plan = reconcile(make(), Observed(), T0)
    assert plan.create
    assert created_config(plan)["parent"] is None


def test_judge_names_the_verdicts() -> None:
    ok = judge(ObservedParent("a", True, "Succeeded", "s3://b/x/model"), "ns")
    assert ok == ParentJob(name="a", namespace="ns", uri="s3://b/x/model")
    assert isinstance(judge(ObservedParent("a", True, "Running"), "ns"), Wait)
    assert isinstance(judge(ObservedParent("a", False), "ns"), Unusable)
