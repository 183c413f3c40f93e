"""The pod side of s3://: AWS_* variables understood by boto3/botocore and s3fs.

spec.storage.endpoint/region (or the controller's defaults) and the keys of
spec.storage.credentialsSecret, by secretKeyRef only.
"""

from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.schemes.base import SchemeDescriptor, SecretNeed, secret_ref
from ftjobs.render.settings import RenderSettings

ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN = "AWS_SESSION_TOKEN"


def s3_env(spec: FineTuneJobSpec, settings: RenderSettings) -> list[dict[str, Any]]:
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
        env.append(secret_ref(storage.credentials_secret, ACCESS_KEY, optional=False))
        env.append(secret_ref(storage.credentials_secret, SECRET_KEY, optional=False))
        env.append(secret_ref(storage.credentials_secret, SESSION_TOKEN, optional=True))
    return env


def s3_secrets(spec: FineTuneJobSpec) -> list[SecretNeed]:
    name = spec.storage.credentials_secret
    if not name:
        return []
    return [
        SecretNeed(
            "s3",
            "secret",
            "spec.storage.credentialsSecret",
            name,
            (ACCESS_KEY, SECRET_KEY),
            (SESSION_TOKEN,),
        )
    ]


DESCRIPTOR = SchemeDescriptor("s3", env=s3_env, secrets=s3_secrets)
