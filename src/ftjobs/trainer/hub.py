"""Base models from the Hugging Face Hub: pin a commit, download once, keep a copy in storage.

`hf://org/name[@revision]` (or `model.revision`) is resolved to a commit sha by global rank
0 and broadcast, so every rank and node loads the same files even if the branch moves
during the download. The download is `huggingface_hub.snapshot_download` into the node's
scratch volume; `HF_ENDPOINT` (spec.hub.endpoint, a mirror) and `HF_TOKEN`
(spec.hub.tokenSecret) are read by the library from the environment.

Who downloads: without `model.cacheUri`, local rank 0 of each node while the node's other
ranks wait (one download per node, not per process). With it, global rank 0 downloads
from the Hub and commits the folder to `<cacheUri>/<org>/<name>/<commit>/` (files, then
MANIFEST.json, see storage.manifest), and every node reads that verified copy: the Hub is
asked once per job, and a retry or a later job on the same commit not at all.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist

from ftjobs.api.errors import RetriableError
from ftjobs.api.hub_uri import DEFAULT_HUB_ENDPOINT, HubRef, parse_hub_uri
from ftjobs.api.spec import ModelSpec
from ftjobs.storage import IncompleteCheckpoint, ObjectStore, download_dir, upload_dir
from ftjobs.storage.manifest import read_manifest
from ftjobs.trainer.errors import ModelError
from ftjobs.trainer.runtime import World, barrier

log = logging.getLogger(__name__)
TOKEN_HINT = (
    "check the name; a private or gated model needs spec.hub.tokenSecret "
    "(a Secret with the key HF_TOKEN)"
)


def hub_ref(model: ModelSpec) -> HubRef:
    return parse_hub_uri(model.location, model.revision)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_HUB_ENDPOINT).rstrip("/")


def resolve_commit(ref: HubRef) -> str:
    """The commit sha `ref` names now; ModelError when it does not exist (permanent)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{ref.uri} on {endpoint()}"
    try:
        info = HfApi(endpoint=endpoint()).model_info(ref.repo, revision=ref.revision)
    except RevisionNotFoundError:
        raise ModelError(f"model {where}: revision {ref.revision!r} does not exist") from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise ModelError(f"model {where} not found or not accessible: {TOKEN_HINT}") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else 0
        if status in (401, 403):
            raise ModelError(f"model {where}: access refused ({status}): {TOKEN_HINT}") from None
        raise RetriableError(f"model {where}: the Hub answered {status}") from None
    except Exception as e:  # connection refused, DNS, TLS, timeouts (the client's own types)
        raise RetriableError(f"model {where}: cannot reach the Hub ({type(e).__name__})") from None
    if not info.sha:
        raise RetriableError(f"model {where}: the Hub returned no commit")
    return info.sha


def download_snapshot(ref: HubRef, commit: str, target: Path) -> None:
    """Every file of `ref` at `commit` into `target` (absent or empty); progress bars on stderr."""
    from huggingface_hub import snapshot_download

    staging = target.with_name(f".{target.name}.hub")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        snapshot_download(ref.repo, revision=commit, local_dir=staging, endpoint=endpoint())
    except Exception as e:  # the commit exists (resolved above): network or disk trouble
        shutil.rmtree(staging, ignore_errors=True)
        raise RetriableError(f"model {ref.uri}: download failed ({type(e).__name__})") from e
    # snapshot_download keeps its bookkeeping in <local_dir>/.cache: not part of the model.
    shutil.rmtree(staging / ".cache", ignore_errors=True)
    if target.exists():
        target.rmdir()
    os.replace(staging, target)


def _cached(cache: ObjectStore, prefix: str) -> bool:
    try:
        read_manifest(cache, prefix)
    except IncompleteCheckpoint:
        return False
    return True


def fetch_hub_model(
    model: ModelSpec,
    *,
    target: Path,
    world: World,
    open_cache: Callable[[str], ObjectStore],
) -> Path:
    """The model's folder on this node (`target`), downloaded once per node or once per job."""
    ref = hub_ref(model)
    outcome: list[str | None] = [None, None]  # commit, or the error for every rank to raise
    if world.is_main:
        try:
            outcome[0] = resolve_commit(ref)
        except (ModelError, RetriableError) as e:
            outcome[1] = f"{'permanent' if isinstance(e, ModelError) else 'retriable'}:{e}"
    if dist.is_available() and dist.is_initialized():
        dist.broadcast_object_list(outcome, src=0)
    if outcome[1] is not None:
        kind, _, message = outcome[1].partition(":")
        raise ModelError(message) if kind == "permanent" else RetriableError(message)
    commit = str(outcome[0])
    log.info("model %s is commit %s", ref.uri, commit)

    cache: ObjectStore | None = None
    prefix = f"{ref.repo}/{commit}/"
    if model.cache_uri:
        cache = open_cache(model.cache_uri)
        if world.is_main and not _cached(cache, prefix):
            download_snapshot(ref, commit, target)
            upload_dir(cache, target, prefix)
            log.info("model %s cached at %s", ref.uri, cache.url(prefix))
        barrier()  # the cached copy is complete before any other node reads it
    if world.local_rank == 0 and not target.exists():
        if cache is not None:
            download_dir(cache, prefix, target)
            log.info("model %s read from the cache %s", ref.uri, cache.url(prefix))
        else:
            download_snapshot(ref, commit, target)
    barrier()
    return target
