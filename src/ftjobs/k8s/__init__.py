"""The one Kubernetes API adapter (kubernetes client): verbs over plain dicts, errors
classified retriable/permanent, leader election. Nothing else in ftjobs imports the
kubernetes client; kopf is used only by ftjobs.controller.handlers."""

from ftjobs.k8s.client import Kube, load_client, resource_path
from ftjobs.k8s.errors import (
    AlreadyExists,
    Conflict,
    KubeError,
    KubeNotFound,
    KubePermanent,
    KubeRetriable,
)

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Kube",
    "KubeError",
    "KubeNotFound",
    "KubePermanent",
    "KubeRetriable",
    "load_client",
    "resource_path",
]
