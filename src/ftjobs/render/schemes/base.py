"""What a storage scheme needs in the trainer pod, as pure data: the descriptor type.

A descriptor says which environment variables, volumes and mounts a scheme's client
needs and which Secret keys preflight should find; it renders references only (never a
credential value) and does no I/O. The storage side of the same scheme (client, errors)
is `ftjobs.storage.backends`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.settings import RenderSettings

Objects = list[dict[str, Any]]


@dataclass(frozen=True)
class SecretNeed:
    """A Secret the pods read: preflight checks it exists and holds `required`."""

    scheme: str
    check: str  # the preflight check's name
    field: str  # the spec field that names the Secret, for messages
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


def _nothing(_spec: FineTuneJobSpec) -> list[Any]:
    return []


def _no_env(_spec: FineTuneJobSpec, _settings: RenderSettings) -> Objects:
    return []


@dataclass(frozen=True)
class SchemeDescriptor:
    """The pod side of one storage scheme."""

    scheme: str
    env: Callable[[FineTuneJobSpec, RenderSettings], Objects] = _no_env
    volumes: Callable[[FineTuneJobSpec], Objects] = _nothing
    mounts: Callable[[FineTuneJobSpec], Objects] = _nothing
    secrets: Callable[[FineTuneJobSpec], list[SecretNeed]] = _nothing


def secret_ref(secret: str, key: str, *, optional: bool) -> dict[str, Any]:
    """An env entry taking `key` of Secret `secret` (named keys rather than envFrom: only
    these reach the process, and a missing required key keeps the pod in
    CreateContainerConfigError with a message naming the key)."""
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": key, "valueFrom": {"secretKeyRef": ref}}
