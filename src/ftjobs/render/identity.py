"""The trainer's identity shared by the FineTuneJobs of a namespace.

Rank 0 of a trainer patches its own FineTuneJob's status with progress; nothing else in
the pod needs the Kubernetes API. One ServiceAccount, Role and RoleBinding per namespace
(`TRAINER_IDENTITY`), created once, instead of three objects per job: every write before a
Job is latency in a burst of jobs (docs/benchmarks.md), and the ServiceAccount must exist
before the Job's pods are admitted. The Role cannot name one job (resourceNames), so the
ValidatingAdmissionPolicy the chart installs (docs/security.md) limits each trainer pod to
the FineTuneJob whose Job it belongs to.

These objects belong to no FineTuneJob (no owner reference): they stay with the namespace,
as its `default` ServiceAccount does. A job with its own cloud identity
(spec.serviceAccount.annotations) or its own account (spec.serviceAccount.name) keeps a
per-job Role (render/rbac.py, `render_rbac`).
"""

from __future__ import annotations

from typing import Any

from ftjobs.api.constants import (
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGER,
    TRAINER_IDENTITY,
)
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render import rbac

_KINDS = {"ServiceAccount", "Role", "RoleBinding"}


def uses_shared_identity(spec: FineTuneJobSpec) -> bool:
    """Whether the job's pods run as the namespace's shared trainer identity."""
    own = spec.service_account
    return own is None or (own.name is None and not own.annotations)


def namespace_identity(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding `TRAINER_IDENTITY` of `namespace`."""
    meta = {
        "name": TRAINER_IDENTITY,
        "namespace": namespace,
        "labels": {LABEL_NAME: "ftjobs", LABEL_COMPONENT: "trainer", LABEL_MANAGED_BY: MANAGER},
    }
    return [
        rbac.service_account(dict(meta)),
        rbac.role(dict(meta), name=None),
        rbac.role_binding(
            dict(meta),
            role_name=TRAINER_IDENTITY,
            service_account_name=TRAINER_IDENTITY,
            namespace=namespace,
        ),
    ]


def is_namespace_identity(obj: dict[str, Any]) -> bool:
    """Whether rendered object `obj` is part of a namespace's shared trainer identity."""
    return obj.get("kind") in _KINDS and obj["metadata"].get("name") == TRAINER_IDENTITY
