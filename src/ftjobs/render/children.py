"""The child objects of a FineTuneJob: which kinds, their names, and the creation order.

The one list of what a FineTuneJob owns. `render_job` renders these objects; the
controller finds, creates and deletes them through the refs below and never spells a
kind or an apiVersion itself, so adding a child object is one entry in `CHILD_KINDS`
(and its renderer in `render_attempt` or `render_rbac`). The trainer's config is no
object of its own: the Job carries it (render.config), one API write fewer per attempt.

Creation goes in stages: the objects of one stage are created concurrently, a stage
only after the previous one exists. Every write before the Job delays it (in a burst each
write waits in the API server's queue), so the Job goes in the first stage it can: stage 0
holds what must exist before the Job's pods are admitted, the trainer's ServiceAccount (pod
admission refuses a pod whose account does not exist) and its Role (a controller without
the `bind` verb may only bind a Role that exists); stage 1 the Job, with the RoleBinding
(the trainer needs it once it runs); stage 2, as soon as the Job's create returns, the
attempt's Service (pod DNS names, resolved only once ranks rendezvous) and NetworkPolicy.
With the namespace's shared trainer identity (render/identity.py) already in place, stage
0 is empty and the Job is the first write.

The NetworkPolicy follows the Job by one round trip, before the Job controller can have
created, scheduled and started a pod; and Kubernetes gives no stronger promise anyway (a
network plugin may start a pod before it enforces a policy that exists, docs/security.md).

Crash safety: the status records an attempt only after all its stages exist. A controller
killed in between leaves a Job whose attempt the status does not record yet; the next
reconcile then creates the attempt's other children (adopting what exists), see
controller.reconcile.dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ftjobs.render.meta import ChildNames, child_names


@dataclass(frozen=True)
class ObjectRef:
    """What identifies a namespaced object of a FineTuneJob (its namespace is the job's)."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class ChildKind:
    """One kind of child object: per job (created once) or per attempt, and when it is
    created relative to the others."""

    api_version: str
    kind: str
    per_attempt: bool
    stage: int  # creation stage: 0 first, concurrently; higher stages after lower ones
    name: Callable[[ChildNames], str]

    def ref(self, names: ChildNames) -> ObjectRef:
        return ObjectRef(self.api_version, self.kind, self.name(names))

    def named(self, name: str) -> ObjectRef:
        """The object of this kind called `name` (e.g. an observed Job)."""
        return ObjectRef(self.api_version, self.kind, name)

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether rendered/stored object `obj` is of this kind."""
        return (obj.get("apiVersion"), obj.get("kind")) == (self.api_version, self.kind)


SERVICE_ACCOUNT = ChildKind("v1", "ServiceAccount", False, 0, lambda n: n.service_account)
ROLE = ChildKind("rbac.authorization.k8s.io/v1", "Role", False, 0, lambda n: n.role)
ROLE_BINDING = ChildKind(
    "rbac.authorization.k8s.io/v1", "RoleBinding", False, 1, lambda n: n.role_binding
)
SERVICE = ChildKind("v1", "Service", True, 2, lambda n: n.service)
NETWORK_POLICY = ChildKind(
    "networking.k8s.io/v1", "NetworkPolicy", True, 2, lambda n: n.network_policy
)
JOB = ChildKind("batch/v1", "Job", True, 1, lambda n: n.job)

# Every kind a FineTuneJob owns, in rendering order.
CHILD_KINDS: tuple[ChildKind, ...] = (
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    SERVICE,
    NETWORK_POLICY,
    JOB,
)


def job_ref(name: str, attempt: int) -> ObjectRef:
    """The Job of attempt `attempt` of FineTuneJob `name`."""
    return JOB.ref(child_names(name, attempt))


def attempt_refs(name: str, attempt: int) -> list[ObjectRef]:
    """The per-attempt children of `attempt`, in deletion order: the Job last, because
    its absence is what marks the attempt as gone."""
    names = child_names(name, attempt)
    kinds = sorted((k for k in CHILD_KINDS if k.per_attempt), key=lambda k: k is JOB)
    return [k.ref(names) for k in kinds]


def job_refs(name: str) -> list[ObjectRef]:
    """The per-job children (the trainer's RBAC), in deletion order (reverse creation).
    A user's own service account (spec.serviceAccount.name) is not ours: deleting the
    per-job name then finds nothing."""
    names = child_names(name, 1)
    kinds = [k for k in CHILD_KINDS if not k.per_attempt]
    return [k.ref(names) for k in reversed(sorted(kinds, key=lambda k: k.stage))]


def kind_of(obj: dict[str, Any]) -> ChildKind:
    """The child kind of a rendered object (ValueError for an object render never makes)."""
    for kind in CHILD_KINDS:
        if kind.matches(obj):
            return kind
    raise ValueError(f"{obj.get('apiVersion')}/{obj.get('kind')} is not a FineTuneJob child")


def creation_stages(objects: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`objects` grouped into creation stages, in order; each stage's objects may be
    created concurrently once every earlier stage exists."""
    stages: dict[int, list[dict[str, Any]]] = {}
    for obj in objects:
        stages.setdefault(kind_of(obj).stage, []).append(obj)
    return [stages[s] for s in sorted(stages)]
