"""Preflight of hf:// models and datasets: the repo and the revision exist on the Hub.

Asked of the endpoint the pods will use (spec.hub.endpoint, else HF_ENDPOINT, else
huggingface.co) with the caller's token (HF_TOKEN or a `hf auth login` token): the pods
use the token of spec.hub.tokenSecret, which this check cannot read, so a private repo
the caller cannot see is reported as a warning, not a failure. With HF_HUB_OFFLINE set
nothing is asked and the checks say they were skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

from ftjobs.api.hub_uri import DEFAULT_HUB_ENDPOINT, parse_hub_uri
from ftjobs.api.job import FineTuneJob

Add = Callable[[str, Literal["ok", "warn", "fail", "skip"], str], None]


def hub_endpoint(job: FineTuneJob) -> str:
    endpoint = job.spec.hub.endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_HUB_ENDPOINT
    return endpoint.rstrip("/")


def hub_targets(job: FineTuneJob) -> list[tuple[str, str]]:
    """(label, uri) of every hf:// location the job reads."""
    spec = job.spec
    found = [("model", spec.model.uri or ""), ("dataset.train", spec.dataset.train)]
    found += [("dataset.validation", spec.dataset.validation or "")]
    found += [("dataset.test", spec.dataset.test or "")]
    return [(label, uri) for label, uri in found if uri.startswith("hf://")]


def check_hub(job: FineTuneJob, add: Add) -> None:
    """One `hub <label>` check per hf:// location: ok (with the commit), warn, fail or skip."""
    targets = hub_targets(job)
    if not targets:
        return
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = hub_endpoint(job)
    for label, uri in targets:
        check = f"hub {label}"
        if constants.HF_HUB_OFFLINE:
            add(check, "skip", f"HF_HUB_OFFLINE is set: {uri} not checked")
            continue
        ref = parse_hub_uri(uri, job.spec.model.revision if label == "model" else None)
        kind, repo, revision = ref.kind, ref.repo, ref.revision
        api = HfApi(endpoint=endpoint)
        info: Any
        try:
            if kind == "model":
                info = api.model_info(repo, revision=revision)
            else:
                info = api.dataset_info(repo, revision=revision)
        except RevisionNotFoundError:
            add(check, "fail", f"{uri}: revision {revision!r} does not exist on {endpoint}")
        except (RepositoryNotFoundError, GatedRepoError):
            add(
                check,
                "fail" if job.spec.hub.token_secret is None else "warn",
                f"{uri}: no such {kind} on {endpoint}, or private/gated and not visible with "
                "your token (the pods use spec.hub.tokenSecret's HF_TOKEN)",
            )
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            add(check, "warn", f"{uri}: {endpoint} answered {status}: not checked")
        except Exception as exc:  # connection refused, DNS, TLS: the client's own types
            add(check, "warn", f"{uri}: cannot reach {endpoint} ({type(exc).__name__})")
        else:
            at = f"@{revision}" if revision else ""
            add(check, "ok", f"{kind} {repo}{at} is commit {str(info.sha)[:12]} on {endpoint}")
