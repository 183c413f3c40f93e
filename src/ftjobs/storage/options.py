"""Settings shared by the boto3 client and by s3fs (what `datasets` streams through).

Endpoint and region resolve the same way for both, so the trainer's data and its
checkpoints always talk to the same server.
"""

from __future__ import annotations

import os
from typing import Any

from ftjobs.storage.base import TransferSettings


def resolve_endpoint(endpoint: str | None = None) -> str | None:
    """The endpoint argument (from the spec), else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL."""
    return (
        endpoint
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def resolve_region(region: str | None = None) -> str:
    """The region argument, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1."""
    return (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )


def datasets_storage_options(
    endpoint: str | None = None,
    region: str | None = None,
    transfer: TransferSettings | None = None,
) -> dict[str, Any]:
    """`storage_options` for `datasets`/fsspec s3fs: a NEW dict on every call.

    `datasets` mutates the dict it is given (it pops and adds keys), so a dict shared
    between calls silently changes the second call's settings. Credentials are read
    from the environment here only because s3fs takes them as arguments; without them
    in the environment, s3fs falls back to its own default chain (web identity, instance
    profile), like boto3 does.
    """
    resolved = resolve_endpoint(endpoint)
    settings = transfer or TransferSettings()
    options: dict[str, Any] = {
        "client_kwargs": {"region_name": resolve_region(region)},
        "config_kwargs": {
            "retries": {"total_max_attempts": settings.max_attempts, "mode": settings.retry_mode},
            "connect_timeout": settings.connect_timeout_s,
            "read_timeout": settings.read_timeout_s,
            # Same reason as the boto3 client: S3-compatible servers want path style.
            "s3": {"addressing_style": "path" if resolved else "auto"},
        },
    }
    if resolved:
        options["client_kwargs"]["endpoint_url"] = resolved
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options["key"] = key
        options["secret"] = secret
        if token := os.environ.get("AWS_SESSION_TOKEN"):
            options["token"] = token
    return options
