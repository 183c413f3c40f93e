"""Names, labels and owner references shared by every child object.

Names are a pure function of (job name, attempt) so the controller finds and adopts its
children after a restart without storing anything: per-job objects (the trainer's RBAC)
are `<name>-trainer`, per-attempt objects (Service, NetworkPolicy, Job) are `<name>-<attempt>`.
"""

import re
from dataclasses import dataclass
from typing import Any

from ftjobs.api.constants import (
    API_VERSION,
    KIND,
    LABEL_ATTEMPT,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_JOB,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGER,
)
from ftjobs.api.types import JOB_NAME_MAX, JOB_NAME_PATTERN

APP = "ftjobs"
COMPONENT = "trainer"
# Kubernetes object names and labels values of Services and pod host names: DNS-1035 labels.
MAX_NAME = 63


@dataclass(frozen=True)
class ChildNames:
    """Deterministic names of one attempt's children (and of the job's RBAC objects)."""

    job: str
    service: str
    network_policy: str
    service_account: str
    role: str
    role_binding: str


def check_name(name: str) -> None:
    """Refuse a name the API would refuse: children derive theirs from it."""
    if len(name) > JOB_NAME_MAX or not re.fullmatch(JOB_NAME_PATTERN, name):
        raise ValueError(f"invalid FineTuneJob name {name!r}")


def child_names(name: str, attempt: int) -> ChildNames:
    """The names of attempt `attempt` (1-based) of FineTuneJob `name`."""
    check_name(name)
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1 (got {attempt})")
    per_attempt = f"{name}-{attempt}"
    per_job = f"{name}-trainer"
    # <name> is at most 40 characters, so <name>-<attempt>-<index> (pod host names) fits 63.
    if len(per_attempt) + 1 + 4 > MAX_NAME:
        raise ValueError(f"attempt {attempt} makes child names longer than {MAX_NAME}")
    return ChildNames(
        job=per_attempt,
        service=per_attempt,
        network_policy=per_attempt,
        service_account=per_job,
        role=per_job,
        role_binding=per_job,
    )


def selector_labels(name: str, attempt: int | None = None) -> dict[str, str]:
    """The labels that identify a job's (or one attempt's) objects; used in selectors."""
    labels = {LABEL_JOB: name}
    if attempt is not None:
        labels[LABEL_ATTEMPT] = str(attempt)
    return labels


def labels(name: str, attempt: int | None = None) -> dict[str, str]:
    """Recommended app.kubernetes.io labels plus the ftjobs selector labels."""
    return {
        LABEL_NAME: APP,
        LABEL_INSTANCE: name,
        LABEL_COMPONENT: COMPONENT,
        LABEL_MANAGED_BY: MANAGER,
        **selector_labels(name, attempt),
    }


def owner_references(name: str, uid: str) -> list[dict[str, Any]]:
    """The FineTuneJob as controlling owner, so garbage collection removes the children.

    A job rendered from a file (`ftjobs render`) has no uid yet; an owner reference with
    an empty uid is refused by the API server, so none is written then.
    """
    if not uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_meta(
    object_name: str,
    *,
    namespace: str,
    name: str,
    uid: str,
    attempt: int | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """metadata of a child object of FineTuneJob `name`."""
    meta: dict[str, Any] = {
        "name": object_name,
        "namespace": namespace,
        "labels": {**labels(name, attempt), **(extra_labels or {})},
    }
    owners = owner_references(name, uid)
    if owners:
        meta["ownerReferences"] = owners
    return meta
