"""Security contexts that satisfy the Pod Security Standard `restricted`.

restricted requires: runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL,
seccompProfile RuntimeDefault (or Localhost), and only the restricted volume types
(downwardAPI, emptyDir, secret: all that the trainer pods use). A fixed non-root uid makes
runAsNonRoot verifiable by the kubelet even for images whose USER is a name.
"""

from typing import Any

from ftjobs.render.settings import RenderSettings


def pod_security_context(settings: RenderSettings) -> dict[str, Any]:
    uid = settings.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        # Mounted volumes (and files the trainer writes there) belong to the trainer's group.
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(settings: RenderSettings) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": settings.read_only_root_filesystem,
        "runAsNonRoot": True,
    }
