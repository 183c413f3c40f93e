"""Child names, labels and owner references."""

import pytest

from ftjobs.api import constants as c
from ftjobs.api.types import JOB_NAME_MAX
from ftjobs.render import child_names, render_attempt, render_rbac
from tests.builders import make_job
from tests.unit.render.helpers import NAMESPACE, UID, by_kind, render

LONGEST = "a" * JOB_NAME_MAX

# A job with an identity of its own (a per-job ServiceAccount and Role): every object is
# the job's. The namespace's shared identity is tested in test_config_and_rbac.py.
OWN_IDENTITY = {"annotations": {"example.com/identity": "team-a"}}


def test_names_are_deterministic_and_per_attempt() -> None:
    one, two = child_names("llm", 1), child_names("llm", 2)
    assert child_names("llm", 1) == one
    assert (one.job, one.service, one.network_policy) == ("llm-1", "llm-1", "llm-1")
    assert (two.job, two.service, two.network_policy) == ("llm-2", "llm-2", "llm-2")
    # RBAC is per job: every attempt uses the same ServiceAccount.
    assert one.service_account == two.service_account == "llm-trainer"
    assert one.role == one.role_binding == "llm-trainer"


@pytest.mark.parametrize("attempt", [1, 9, 10, 999, 10**6])
def test_names_and_pod_host_names_fit_63_characters(attempt: int) -> None:
    names = child_names(LONGEST, attempt)
    for value in vars(names).values():
        assert len(value) <= 63, value
    # Pod i of the Indexed Job is <job>-<i>; the spec allows up to 1024 nodes.
    assert len(f"{names.job}-1023") <= 63


def test_rendered_objects_use_the_child_names() -> None:
    objects = render(make_job(LONGEST).spec("serviceAccount", OWN_IDENTITY), attempt=3)
    names = child_names(LONGEST, 3)
    got = {o["kind"]: o["metadata"]["name"] for o in objects}
    assert got == {
        "ServiceAccount": names.service_account,
        "Role": names.role,
        "RoleBinding": names.role_binding,
        "Service": names.service,
        "NetworkPolicy": names.network_policy,
        "Job": names.job,
    }
    assert all(len(n) <= 63 for n in got.values())


@pytest.mark.parametrize("bad", ["", "Upper", "1abc", "a" * (JOB_NAME_MAX + 1), "a_b"])
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        child_names(bad, 1)


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_one_based(attempt: int) -> None:
    with pytest.raises(ValueError):
        child_names("llm", attempt)
    with pytest.raises(ValueError):
        render(make_job("llm"), attempt=attempt)


def test_every_object_is_owned_by_the_finetunejob() -> None:
    for obj in render(make_job("llm").spec("serviceAccount", OWN_IDENTITY)):
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "ftjobs.dev/v1alpha1",
                "kind": "FineTuneJob",
                "name": "llm",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], obj["kind"]


def test_without_a_uid_no_owner_reference_is_written() -> None:
    # `ftjobs render` of a file: the API server refuses an ownerReference with no uid.
    for obj in render(make_job("llm"), uid=""):
        assert "ownerReferences" not in obj["metadata"], obj["kind"]


def test_labels_on_every_object_and_attempt_only_on_attempt_objects() -> None:
    objects = by_kind(render(make_job("llm").spec("serviceAccount", OWN_IDENTITY), attempt=4))
    common = {
        "app.kubernetes.io/name": "ftjobs",
        "app.kubernetes.io/instance": "llm",
        "app.kubernetes.io/component": "trainer",
        "app.kubernetes.io/managed-by": "ftjobs-controller",
        "ftjobs.dev/job": "llm",
    }
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        assert objects[kind]["metadata"]["labels"] == common
    for kind in ("Service", "NetworkPolicy", "Job"):
        assert objects[kind]["metadata"]["labels"] == {**common, c.LABEL_ATTEMPT: "4"}
    pod_labels = objects["Job"]["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == {**common, c.LABEL_ATTEMPT: "4"}
    assert c.LABEL_KUEUE_QUEUE not in str(objects)


def test_queue_label_on_the_job_only() -> None:
    objects = by_kind(render(make_job("llm").queue("team-a")))
    assert objects["Job"]["metadata"]["labels"][c.LABEL_KUEUE_QUEUE] == "team-a"
    # On the pods Kueue's pod integration would take them for standalone workloads.
    assert c.LABEL_KUEUE_QUEUE not in objects["Job"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "NetworkPolicy", "ServiceAccount"):
        assert c.LABEL_KUEUE_QUEUE not in objects[kind]["metadata"]["labels"]


def test_render_job_is_rbac_then_attempt_in_creation_order() -> None:
    job = make_job("llm").build()
    kw = {"namespace": NAMESPACE, "name": "llm", "uid": UID}
    rbac = render_rbac(job, **kw)
    attempt = render_attempt(job, attempt=2, resume=True, **kw)
    assert [o["kind"] for o in rbac] == ["ServiceAccount", "Role", "RoleBinding"]
    assert [o["kind"] for o in attempt] == ["Service", "NetworkPolicy", "Job"]
    assert render(job, attempt=2, resume=True) == rbac + attempt


def test_rendering_is_deterministic_and_does_not_share_state() -> None:
    job = make_job("llm").nodes(2).gpus(4).toleration("a", "b").node_selector(pool="x").build()
    first = render(job)
    first[-1]["spec"]["template"]["spec"]["tolerations"].append({"key": "mutated"})
    first[-1]["metadata"]["labels"]["mutated"] = "yes"
    assert render(job) != first
    assert render(job) == render(job)
    assert "mutated" not in str(render(job))
    assert job.spec.resources.tolerations[0].key == "a"
    assert len(job.spec.resources.tolerations) == 1
