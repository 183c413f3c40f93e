"""Render owns the list of a FineTuneJob's children: kinds, names and creation order."""

from typing import Any

import pytest

from ftjobs.render import (
    CHILD_KINDS,
    JOB,
    attempt_refs,
    creation_stages,
    is_namespace_identity,
    job_ref,
    job_refs,
)
from ftjobs.render.children import ObjectRef, kind_of
from tests.builders import JobBuilder
from tests.unit.render.helpers import render

pytestmark = pytest.mark.unit


def _refs(objects: list[dict[str, Any]]) -> set[ObjectRef]:
    return {ObjectRef(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects}


@pytest.mark.parametrize("attempt", [1, 3])
def test_the_refs_name_exactly_what_render_makes(attempt: int) -> None:
    objects = render(JobBuilder("demo"), attempt=attempt)
    # Every rendered object is a listed kind (a new renderer without an entry fails here)...
    assert {(k.api_version, k.kind) for k in map(kind_of, objects)} == {
        (k.api_version, k.kind) for k in CHILD_KINDS
    }
    # ...and the refs the controller deletes by are the rendered objects, no more, no less:
    # those of a job with its own identity, or the job's besides the namespace's shared one.
    own = render(
        JobBuilder("demo").spec("serviceAccount", {"annotations": {"a": "b"}}), attempt=attempt
    )
    assert _refs(own) == set(attempt_refs("demo", attempt)) | set(job_refs("demo"))
    mine = [o for o in objects if not is_namespace_identity(o)]
    assert _refs(mine) == set(attempt_refs("demo", attempt))
    assert job_ref("demo", attempt) in _refs([o for o in objects if JOB.matches(o)])


def test_deletion_order_leaves_the_job_and_the_role_binding_first_or_last() -> None:
    refs = attempt_refs("demo", 2)
    assert refs[-1] == job_ref("demo", 2)  # its absence marks the attempt gone
    assert [r.kind for r in job_refs("demo")] == ["RoleBinding", "Role", "ServiceAccount"]


def test_creation_stages_put_the_account_and_role_first_then_the_job_then_its_network() -> None:
    # What the pods need at admission, then the Job alone (with the binding the trainer
    # needs later), then the Service and NetworkPolicy.
    objects = render(JobBuilder("demo"))
    stages = creation_stages(reversed(objects))  # the input order does not matter
    assert sum(len(s) for s in stages) == len(objects)
    kinds = [sorted(o["kind"] for o in stage) for stage in stages]
    assert kinds == [
        ["Role", "ServiceAccount"],
        ["Job", "RoleBinding"],
        ["NetworkPolicy", "Service"],
    ]
    # Without the identity (the controller knows the namespace has it): the Job is first.
    rest = [o for o in objects if not is_namespace_identity(o)]
    assert [o["kind"] for o in creation_stages(rest)[0]] == ["Job"]


def test_an_object_render_never_makes_is_refused() -> None:
    with pytest.raises(ValueError, match="apps/v1/Deployment"):
        kind_of({"apiVersion": "apps/v1", "kind": "Deployment"})
