"""The admission policy that keeps the shared trainer identity to its own FineTuneJob.

Every trainer in a namespace runs as one ServiceAccount (`TRAINER_IDENTITY`), whose Role
may patch the status of every FineTuneJob there. This ValidatingAdmissionPolicy narrows
that back to one job: a request by that identity is admitted only when its token is bound
to a pod of the FineTuneJob it changes. The kubelet's projected token names its pod in
the user's extra `authentication.kubernetes.io/pod-name`; the Job controller names the
pods of an Indexed Job `<job>-<index>-<5 random characters>`, and the controller names
attempt N's Job `<name>-<N>` (render/meta.py), so a trainer pod of FineTuneJob `<name>`
is `<name>-<attempt>-<index>-<suffix>` and nothing else. The suffix is matched apart from
the name, so FineTuneJob `a`'s pod `a-1-0-x7k2p` never matches `a-1` and the pod
`a-1-1-0-x7k2p` of `a-1` never matches `a`.

Pure data: `hack/generate.py` writes it into manifests/base and the Helm chart.
"""

from __future__ import annotations

from typing import Any, Final

from ftjobs.api.constants import GROUP, PLURAL, TRAINER_IDENTITY

# The policy's (and its binding's) name in manifests/base; the chart prefixes its fullname.
POLICY_NAME: Final = "ftjobs-trainer-own-job"
POD_NAME_EXTRA: Final = "authentication.kubernetes.io/pod-name"
# What follows `<name>-` in a trainer pod's name: attempt (>= 1), completion index, and the
# API server's 5-character generateName suffix (lowercase letters and digits).
POD_SUFFIX_PATTERN: Final = "^[1-9][0-9]*-(0|[1-9][0-9]*)-[a-z0-9]{5}$"

# CEL, its string literals in double quotes.
_IS_TRAINER = (
    f'request.userInfo.username == "system:serviceaccount:" + request.namespace'
    f' + ":{TRAINER_IDENTITY}"'
)
_POD_NAME = (
    f'"{POD_NAME_EXTRA}" in request.userInfo.extra'
    f' && size(request.userInfo.extra["{POD_NAME_EXTRA}"]) == 1'
    f' ? request.userInfo.extra["{POD_NAME_EXTRA}"][0] : ""'
)
_OWN_POD = (
    "variables.podName.startsWith(variables.prefix)"
    " && variables.podName.substring(size(variables.prefix))"
    f'.matches("{POD_SUFFIX_PATTERN}")'
)
_MESSAGE = (
    '"FineTuneJob " + request.namespace + "/" + object.metadata.name + ": the shared'
    f" trainer identity {TRAINER_IDENTITY} may change only the FineTuneJob whose trainer"
    ' pod it runs in (a pod named " + variables.prefix + "<attempt>-<index>-<suffix>), and'
    ' this token " + (variables.podName == "" ? "is bound to no pod"'
    ' : "is bound to pod " + variables.podName)'
)


def policy(labels: dict[str, str], name: str = POLICY_NAME) -> dict[str, Any]:
    """The ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes >= 1.30)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": labels},
        "spec": policy_spec(),
    }


def policy_spec() -> dict[str, Any]:
    return {
        # A broken expression refuses the trainer rather than letting it write anywhere;
        # the match condition below is plain string work on fields every request has, so
        # no other user can be caught by a failure here.
        "failurePolicy": "Fail",
        # A patch is an UPDATE in admission. The Role grants the trainer no write on the
        # main resource, but should anyone widen it the same rule holds there.
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [GROUP],
                    "apiVersions": ["*"],
                    "operations": ["UPDATE"],
                    "resources": [PLURAL, f"{PLURAL}/status"],
                }
            ]
        },
        # Only the shared trainer identity: the controller, users and per-job accounts
        # named in spec.serviceAccount pass untouched.
        "matchConditions": [{"name": "shared-trainer-identity", "expression": _IS_TRAINER}],
        "variables": [
            {"name": "podName", "expression": _POD_NAME},
            {"name": "prefix", "expression": 'object.metadata.name + "-"'},
        ],
        "validations": [
            {
                "expression": _OWN_POD,
                "messageExpression": _MESSAGE,
                "message": (
                    f"the shared trainer identity {TRAINER_IDENTITY} may change only the"
                    " FineTuneJob whose trainer pod its token is bound to"
                ),
                "reason": "Forbidden",
            }
        ],
    }


def binding(labels: dict[str, str], name: str = POLICY_NAME) -> dict[str, Any]:
    """The binding that puts the policy in force, in every namespace (Deny)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": labels},
        "spec": binding_spec(name),
    }


def binding_spec(policy_name: str = POLICY_NAME) -> dict[str, Any]:
    return {"policyName": policy_name, "validationActions": ["Deny"]}
