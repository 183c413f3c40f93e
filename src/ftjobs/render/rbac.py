"""The trainer's identity: a ServiceAccount that may read and patch only its own job.

Rank 0 publishes progress in the FineTuneJob's status; nothing else in the pod needs the
Kubernetes API. The Role is scoped by resourceNames to this one FineTuneJob.
"""

from typing import Any

from ftjobs.api.constants import GROUP, PLURAL


def service_account(meta: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def role(meta: dict[str, Any], *, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [PLURAL],
                "resourceNames": [name],
                "verbs": ["get"],
            },
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [name],
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
