"""The trainer admission policy against the real API server: one shared identity, each
trainer still limited to its own FineTuneJob.

A namespace gets the shared trainer identity (ServiceAccount, Role, RoleBinding
`ftjobs.trainer`, as the controller creates it), FineTuneJobs `a`, `a-1` and `b`, and one
pod named like a trainer pod of each (`<job>-<attempt>-<index>-<suffix>`; they never need
to run). Tokens are bound to those pods as the kubelet binds a pod's projected token. The
policy is the one manifests/base and the chart ship (install_crd applies it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.constants import GROUP, PLURAL, TRAINER_IDENTITY
from ftjobs.api.trainer_policy import POD_NAME_EXTRA, POLICY_NAME
from ftjobs.k8s import Kube
from ftjobs.k8s.errors import KubeError
from tests.e2e.harness import (
    ftj_manifest,
    install_crd,
    kubectl,
    service_account_token,
    token_kubeconfig,
    wait_for,
)

# FineTuneJob -> the name of one of its trainer pods (attempt, index, generated suffix).
# `a-1` is both a FineTuneJob and the prefix of `a`'s attempt-1 pods: the anchoring case.
TRAINER_PODS = {"a": "a-1-0-x7k2p", "a-1": "a-1-1-0-q4m9z", "b": "b-2-1-h5n8w"}
CONTROLLER = "ftjobs"
RBAC = "rbac.authorization.k8s.io/v1"


def role(name: str, rules: list[tuple[str, list[str]]]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC,
        "kind": "Role",
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": [GROUP], "resources": [resource], "verbs": verbs}
            for resource, verbs in rules
        ],
    }


def binding(name: str, role_name: str, account: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def pod(name: str, account: str) -> dict[str, Any]:
    """A pod that stays Pending (no node matches): only its name, uid and account count."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": account,
            "nodeSelector": {"ftjobs.dev/test-no-such-node": "true"},
            "containers": [{"name": "trainer", "image": "registry.invalid/trainer:0"}],
        },
    }


def progress(step: int) -> dict[str, Any]:
    return {"progress": {"step": step}}


@dataclass
class Scene:
    namespace: str
    admin: Kube
    # A client per FineTuneJob, its token bound to that job's trainer pod.
    trainer: dict[str, Kube]
    # The shared identity with a token bound to no pod (`kubectl create token`).
    unbound: Kube
    # The controller's ServiceAccount, token bound to the controller's pod.
    controller: Kube
    kubeconfigs: dict[str, Path]

    def patch(self, who: Kube, job: str, step: int) -> KubeError | None:
        """Patch `job`'s status as `who`; the refusal, or None when admitted."""
        try:
            who.patch_finetunejob_status(self.namespace, job, progress(step))
        except KubeError as exc:
            return exc
        return None


@pytest.fixture
def scene(cluster: Any, namespace: str, tmp_path: Path) -> Scene:
    install_crd(cluster)
    admin = Kube.connect(cluster.kubeconfig)
    objects = [
        # The shared identity as the controller creates it in each namespace.
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": TRAINER_IDENTITY}},
        role(TRAINER_IDENTITY, [(PLURAL, ["get"]), (f"{PLURAL}/status", ["get", "patch"])]),
        binding(TRAINER_IDENTITY, TRAINER_IDENTITY, TRAINER_IDENTITY, namespace),
        # Wider than the controller grants: patch on the main resource too, to show the
        # policy holds there as well should anyone widen the Role.
        role("widened", [(PLURAL, ["patch"])]),
        binding("widened", "widened", TRAINER_IDENTITY, namespace),
        # The controller's own identity (rights as the chart's Role has on FineTuneJobs).
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": CONTROLLER}},
        role(CONTROLLER, [(PLURAL, ["get", "patch"]), (f"{PLURAL}/status", ["get", "patch"])]),
        binding(CONTROLLER, CONTROLLER, CONTROLLER, namespace),
    ]
    for obj in objects:
        admin.create(obj, namespace)
    for job in TRAINER_PODS:
        admin.create(ftj_manifest(job, namespace))
    pods = {
        job: admin.create(pod(name, TRAINER_IDENTITY), namespace)
        for job, name in TRAINER_PODS.items()
    }
    controller_pod = admin.create(pod("ftjobs-5d8c7b9f4-k2x7q", CONTROLLER), namespace)

    kubeconfigs: dict[str, Path] = {}

    def client(key: str, account: str, bound_to: dict[str, Any] | None) -> Kube:
        token = service_account_token(cluster, namespace, account, bound_to)
        kubeconfigs[key] = token_kubeconfig(cluster, token, tmp_path / f"{key}.kubeconfig")
        return Kube.connect(str(kubeconfigs[key]))

    return Scene(
        namespace=namespace,
        admin=admin,
        trainer={job: client(job, TRAINER_IDENTITY, p) for job, p in pods.items()},
        unbound=client("unbound", TRAINER_IDENTITY, None),
        controller=client("controller", CONTROLLER, controller_pod),
        kubeconfigs=kubeconfigs,
    )


def refused_by_policy(error: KubeError | None, scene: Scene, job: str, pod_name: str) -> None:
    assert error is not None, f"the patch of {job} was admitted"
    assert error.status == 403 and error.reason == "Forbidden", error
    assert POLICY_NAME in error.message, error
    assert f"FineTuneJob {scene.namespace}/{job}:" in error.message, error
    assert f"trainer identity {TRAINER_IDENTITY} may change only" in error.message, error
    assert f"a pod named {job}-<attempt>-<index>-<suffix>" in error.message, error
    bound = f"is bound to pod {pod_name}" if pod_name else "is bound to no pod"
    assert bound in error.message, error


def in_force(scene: Scene) -> bool:
    """Whether the API server already enforces the policy (it loads policies by watch)."""
    return scene.patch(scene.trainer["a"], "b", 1) is not None


def test_the_api_server_puts_the_pod_name_into_a_bound_tokens_extra(scene: Scene) -> None:
    """The policy relies on this; SelfSubjectReview shows what admission sees."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    bound = scene.trainer["a"].request("POST", path, body=review)["status"]["userInfo"]
    assert bound["username"] == f"system:serviceaccount:{scene.namespace}:{TRAINER_IDENTITY}"
    assert bound["extra"][POD_NAME_EXTRA] == [TRAINER_PODS["a"]]
    unbound = scene.unbound.request("POST", path, body=review)["status"]["userInfo"]
    assert POD_NAME_EXTRA not in (unbound.get("extra") or {})


def test_a_trainer_may_patch_only_its_own_finetunejob(scene: Scene) -> None:
    wait_for("the trainer policy in force", lambda: in_force(scene), 30)
    a, a1, b = (scene.trainer[job] for job in ("a", "a-1", "b"))
    # Each trainer patches its own job's status.
    for job, who in (("a", a), ("a-1", a1), ("b", b)):
        assert scene.patch(who, job, 7) is None, job
        assert scene.admin.get_finetunejob(scene.namespace, job)["status"]["progress"]["step"] == 7
    # Another job's, in both directions of the prefix case, is refused with the reason.
    refused_by_policy(scene.patch(a, "b", 9), scene, "b", TRAINER_PODS["a"])
    refused_by_policy(scene.patch(a, "a-1", 9), scene, "a-1", TRAINER_PODS["a"])
    refused_by_policy(scene.patch(a1, "a", 9), scene, "a", TRAINER_PODS["a-1"])
    refused_by_policy(scene.patch(b, "a", 9), scene, "a", TRAINER_PODS["b"])
    for job in TRAINER_PODS:
        assert scene.admin.get_finetunejob(scene.namespace, job)["status"]["progress"]["step"] == 7
    # A token of no pod is refused even for a job it could otherwise name.
    for job in TRAINER_PODS:
        refused_by_policy(scene.patch(scene.unbound, job, 9), scene, job, "")
    # The main resource (UPDATE, should the Role ever grant it): own yes, other no.
    a.patch_finetunejob_annotations(scene.namespace, "a", {"ftjobs.dev/test": "own"})
    try:
        a.patch_finetunejob_annotations(scene.namespace, "b", {"ftjobs.dev/test": "other"})
    except KubeError as exc:
        refused_by_policy(exc, scene, "b", TRAINER_PODS["a"])
    else:
        raise AssertionError("a's trainer changed b's annotations")


def test_the_controller_and_an_admin_are_not_affected(scene: Scene) -> None:
    wait_for("the trainer policy in force", lambda: in_force(scene), 30)
    for job in TRAINER_PODS:
        assert scene.patch(scene.controller, job, 11) is None, job
        assert scene.patch(scene.admin, job, 12) is None, job
        scene.controller.patch_finetunejob_annotations(scene.namespace, job, {"x.dev/c": "1"})


@pytest.fixture
def without_binding(cluster: Any) -> Iterator[None]:
    kubectl(cluster, "delete", "validatingadmissionpolicybinding", POLICY_NAME)
    try:
        yield
    finally:
        install_crd(cluster)


def test_negative_control_without_the_binding_a_trainer_patches_any_job(
    scene: Scene, without_binding: None
) -> None:
    """The refusals above come from the policy, not from RBAC or anything else: with the
    binding gone, the same identity's Role lets any trainer (and a token of no pod) patch
    any FineTuneJob in the namespace, which is what the policy exists to stop."""
    wait_for("the policy out of force", lambda: not in_force(scene), 30)
    assert scene.patch(scene.trainer["a"], "a-1", 21) is None
    assert scene.patch(scene.trainer["a-1"], "a", 22) is None
    assert scene.patch(scene.unbound, "b", 23) is None
    steps = {
        job: scene.admin.get_finetunejob(scene.namespace, job)["status"]["progress"]["step"]
        for job in TRAINER_PODS
    }
    assert steps == {"a": 22, "a-1": 21, "b": 23}
