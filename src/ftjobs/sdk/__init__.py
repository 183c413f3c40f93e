"""The Python SDK the CLI calls: load/validate specs, render, submit, watch, run locally.

    from ftjobs.sdk import Client, load_job

    job = load_job("examples/quickstart-sentiment.yaml", ["hyperparameters.epochs=1"])
    client = Client(context="prod")           # kubeconfig as kubectl finds it
    client.submit(job, namespace="ml-team")

Every public name is importable from here; the modules load on first use, so
`ftjobs validate` and `ftjobs run` do not pay for the Kubernetes client. docs/sdk.md
has a complete example.
"""

from importlib import import_module
from typing import Any

# Public name -> the module that defines it.
_EXPORTS = {
    "load_job": "ftjobs.sdk.spec",
    "load_documents": "ftjobs.sdk.spec",
    "validate_file": "ftjobs.sdk.spec",
    "apply_overrides": "ftjobs.sdk.spec",
    "render_manifests": "ftjobs.sdk.manifests",
    "local_config": "ftjobs.sdk.local",
    "run_local": "ftjobs.sdk.local",
    "LocalResult": "ftjobs.sdk.local",
    "preflight": "ftjobs.sdk.preflight",
    "Client": "ftjobs.sdk.client",
    "ClientError": "ftjobs.sdk.client",
    "JobNotFound": "ftjobs.sdk.client",
    "SpecConflict": "ftjobs.sdk.client",
    "WaitTimeout": "ftjobs.sdk.client",
    "JobView": "ftjobs.sdk.client",
    "SubmitResult": "ftjobs.sdk.client",
    "summary_of": "ftjobs.sdk.client",
    "parse_thresholds": "ftjobs.sdk.metrics_gate",
    "evaluate": "ftjobs.sdk.metrics_gate",
    "fine_tuned_metrics": "ftjobs.sdk.metrics_gate",
    "SpecError": "ftjobs.api.validation",
    "FineTuneJob": "ftjobs.api.job",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ftjobs.sdk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
