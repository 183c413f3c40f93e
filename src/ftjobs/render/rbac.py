"""The trainer's RBAC objects: a ServiceAccount, a Role to read and patch FineTuneJobs'
status, and the binding.

Rank 0 publishes progress in the FineTuneJob's status; nothing else in the pod needs the
Kubernetes API. A per-job Role is scoped by resourceNames to its one FineTuneJob; the
namespace's shared one (render/identity.py) names none.
"""

from typing import Any

from ftjobs.api.constants import GROUP, PLURAL


def service_account(meta: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def role(meta: dict[str, Any], *, name: str | None) -> dict[str, Any]:
    """Get FineTuneJob `name` and get/patch its status (every FineTuneJob of the
    namespace when `name` is None)."""
    only = {"resourceNames": [name]} if name is not None else {}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [
            {"apiGroups": [GROUP], "resources": [PLURAL], **only, "verbs": ["get"]},
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                **only,
                "verbs": ["get", "patch"],
            },
        ],
    }


def role_binding(
    meta: dict[str, Any], *, role_name: str, service_account_name: str, namespace: str
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role_name,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": service_account_name, "namespace": namespace}
        ],
    }
