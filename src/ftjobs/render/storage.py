"""How the trainer reaches the object store and the tracking server (env only).

Each storage scheme renders its own part (render.schemes). Credentials are never values
in a rendered object: only `secretKeyRef`s (and Secret volumes) to the Secrets the spec
names, so nothing secret can end up in the trainer's config (a pod annotation), a golden
file, `ftjobs render` output or the Job's spec.
"""

from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.schemes import scheme_env, secret_ref
from ftjobs.render.settings import RenderSettings


def storage_env(spec: FineTuneJobSpec, settings: RenderSettings) -> list[dict[str, Any]]:
    """What each storage scheme's client reads (render.schemes: AWS_* for s3://, ...)."""
    return scheme_env(spec, settings)


MLFLOW_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def tracking_env(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    """MLflow credentials from spec.tracking.mlflow.credentialsSecret (each key optional:
    a server takes either a username and password or a token)."""
    mlflow = spec.tracking.mlflow
    if mlflow is None or not mlflow.credentials_secret:
        return []
    return [secret_ref(mlflow.credentials_secret, key, optional=True) for key in MLFLOW_KEYS]
