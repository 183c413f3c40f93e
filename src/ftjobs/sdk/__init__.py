"""The Python SDK the CLI calls: load/validate specs, render, submit, watch, run locally."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy: `ftjobs validate` and `ftjobs run` must not pay for the kubernetes client.
    if name in {"Client", "ClientError", "JobView", "SubmitResult"}:
        from ftjobs.sdk import client

        return getattr(client, name)
    raise AttributeError(name)
