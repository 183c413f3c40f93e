"""The pod side of gs://: the service-account key file from spec.storage.gcs's Secret.

The Secret's one key is mounted read-only as a file (the Google client libraries take a
key file, not environment values) and GOOGLE_APPLICATION_CREDENTIALS names it; the key
itself never appears in a rendered object. Without a Secret nothing is added: the pods
use their own identity (GKE Workload Identity through spec.serviceAccount).
"""

from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.storage import SERVICE_ACCOUNT_KEY
from ftjobs.render.schemes.base import SchemeDescriptor, SecretNeed
from ftjobs.render.settings import RenderSettings

VOLUME = "gcs-credentials"
MOUNT_DIR = "/var/run/secrets/ftjobs/gcs"
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"


def _secret(spec: FineTuneJobSpec) -> str | None:
    gcs = spec.storage.gcs
    return gcs.credentials_secret if gcs is not None else None


def gs_env(spec: FineTuneJobSpec, _settings: RenderSettings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if _secret(spec):
        env.append({"name": CREDENTIALS_ENV, "value": f"{MOUNT_DIR}/{SERVICE_ACCOUNT_KEY}"})
    gcs = spec.storage.gcs
    if gcs is not None and gcs.project:
        env.append({"name": "GOOGLE_CLOUD_PROJECT", "value": gcs.project})
    return env


def gs_volumes(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    secret = _secret(spec)
    if not secret:
        return []
    item = {"key": SERVICE_ACCOUNT_KEY, "path": SERVICE_ACCOUNT_KEY}
    # 0440 with the pod's fsGroup: readable by the trainer only; a Secret without the key
    # keeps the pod in ContainerCreating with an event naming it.
    return [
        {"name": VOLUME, "secret": {"secretName": secret, "items": [item], "defaultMode": 0o440}}
    ]


def gs_mounts(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    if not _secret(spec):
        return []
    return [{"name": VOLUME, "mountPath": MOUNT_DIR, "readOnly": True}]


def gs_secrets(spec: FineTuneJobSpec) -> list[SecretNeed]:
    secret = _secret(spec)
    if not secret:
        return []
    return [
        SecretNeed(
            "gs", "secret gs", "spec.storage.gcs.credentialsSecret", secret, (SERVICE_ACCOUNT_KEY,)
        )
    ]


DESCRIPTOR = SchemeDescriptor(
    "gs", env=gs_env, volumes=gs_volumes, mounts=gs_mounts, secrets=gs_secrets
)
