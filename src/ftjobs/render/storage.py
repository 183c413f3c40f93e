"""How the trainer reaches the object store: endpoint, region and credentials (env only).

Credentials are never values in a rendered object: only `secretKeyRef`s to the Secret
named by spec.storage.credentialsSecret, so nothing secret can end up in a ConfigMap,
a golden file, `ftjobs render` output or the Job's spec.
"""

from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.settings import RenderSettings

ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN = "AWS_SESSION_TOKEN"


def _secret_ref(secret: str, key: str, *, optional: bool) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": key, "valueFrom": {"secretKeyRef": ref}}


def storage_env(spec: FineTuneJobSpec, settings: RenderSettings) -> list[dict[str, Any]]:
    """AWS_* variables understood by boto3/botocore (and s3fs) in the trainer."""
    storage = spec.storage
    env: list[dict[str, Any]] = []
    endpoint = storage.endpoint or settings.s3_endpoint
    if endpoint:
        # botocore >= 1.31 reads the endpoint from the environment for every client.
        env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint})
    region = storage.region or settings.s3_region
    if region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": region})
        env.append({"name": "AWS_REGION", "value": region})
    if storage.credentials_secret:
        # Named keys rather than envFrom: only these reach the process, and a Secret
        # missing a required key keeps the pod in CreateContainerConfigError with a
        # message naming the key, instead of failing later inside the trainer.
        env.append(_secret_ref(storage.credentials_secret, ACCESS_KEY, optional=False))
        env.append(_secret_ref(storage.credentials_secret, SECRET_KEY, optional=False))
        env.append(_secret_ref(storage.credentials_secret, SESSION_TOKEN, optional=True))
    return env


MLFLOW_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def tracking_env(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    """MLflow credentials from spec.tracking.mlflow.credentialsSecret (each key optional:
    a server takes either a username and password or a token)."""
    mlflow = spec.tracking.mlflow
    if mlflow is None or not mlflow.credentials_secret:
        return []
    return [_secret_ref(mlflow.credentials_secret, key, optional=True) for key in MLFLOW_KEYS]
