"""How the trainer reaches the Hugging Face Hub: endpoint, token (env only), offline mode.

Like S3 credentials, the Hub token is never a value in a rendered object: only a
`secretKeyRef` to the Secret named by spec.hub.tokenSecret. Jobs that name no hf://
model or dataset run with the Hub switched off, so nothing reaches it by accident.
"""

from typing import Any

from ftjobs.api.spec import FineTuneJobSpec

TOKEN_KEY = "HF_TOKEN"


def uses_hub(spec: FineTuneJobSpec) -> bool:
    """Does the job read anything from the Hub (an hf:// model or dataset)?"""
    ds = spec.dataset
    uris = (spec.model.uri or "", ds.train, ds.validation or "", ds.test or "")
    return any(uri.startswith("hf://") for uri in uris)


def hub_env(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    """HF_ENDPOINT / HF_TOKEN for jobs that use the Hub; HF_HUB_OFFLINE=1 for the others."""
    if not uses_hub(spec):
        # Nothing should reach the Hub when everything comes from storage; fail fast instead.
        return [{"name": "HF_HUB_OFFLINE", "value": "1"}]
    env: list[dict[str, Any]] = []
    if spec.hub.endpoint:
        env.append({"name": "HF_ENDPOINT", "value": spec.hub.endpoint})
    if spec.hub.token_secret:
        ref = {"name": spec.hub.token_secret, "key": TOKEN_KEY}
        env.append({"name": TOKEN_KEY, "valueFrom": {"secretKeyRef": ref}})
    return env
