"""The changes a worker makes (up to the Job) and the rest that follows in the background
(controller/execute.py `split_at_job`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ftjobs.controller.execute import split_at_job
from ftjobs.controller.reconcile import Observed, Plan, reconcile
from ftjobs.controller.reconcile.plan import JobPatch
from ftjobs.render import JOB, RenderSettings, creation_stages
from ftjobs.render.children import ObjectRef, kind_of
from tests.builders import JobBuilder

pytestmark = pytest.mark.unit


def _first_plan() -> Plan:
    job = JobBuilder("demo").set("metadata.uid", "u1").set("metadata.namespace", "ml").build()
    return reconcile(job, Observed(), datetime(2026, 1, 1, tzinfo=UTC), RenderSettings())


def test_a_new_jobs_worker_part_ends_with_its_job_and_the_rest_keeps_the_order() -> None:
    plan = _first_plan()
    first, rest = split_at_job(plan)
    stages = creation_stages(plan.create)
    job_stage = next(i for i, st in enumerate(stages) if any(JOB.matches(o) for o in st))
    assert 0 < job_stage < len(stages) - 1, "the plan has stages before and after the Job"
    # The worker's part: every stage up to and including the Job's, nothing after.
    assert [o["kind"] for o in first.create] == [
        o["kind"] for st in stages[: job_stage + 1] for o in st
    ]
    assert any(JOB.matches(o) for o in first.create)
    # The rest: the later stages (Service, NetworkPolicy), nothing created twice or lost.
    assert sorted(o["kind"] for o in rest.create) == ["NetworkPolicy", "Service"]
    assert min(kind_of(o).stage for o in rest.create) > max(kind_of(o).stage for o in first.create)
    assert len(first.create) + len(rest.create) == len(plan.create)
    # Neither part reports: the status and events stay with the plan (reported after both).
    assert plan.status and plan.events
    for part in (first, rest):
        assert part.status is None and part.events == () and part.requeue_after is None


def test_without_a_job_to_create_the_worker_makes_every_create_and_the_rest_the_others() -> None:
    plan = _first_plan()
    service = next(o for o in plan.create if o["kind"] == "Service")
    patch = JobPatch(name="demo-1", suspend=True)
    delete = ObjectRef("v1", "Service", "demo-0")
    no_job = Plan(create=(service,), job_patches=(patch,), delete=(delete,), annotations={"a": "b"})
    first, rest = split_at_job(no_job)
    assert first.create == (service,) and first.job_patches == () and first.delete == ()
    assert rest.create == () and rest.job_patches == (patch,) and rest.delete == (delete,)
    assert rest.annotations == {"a": "b"}


def test_a_plan_with_nothing_to_change_splits_into_two_empty_parts() -> None:
    first, rest = split_at_job(Plan(status={"phase": "Running"}))
    assert first.empty and rest.empty
