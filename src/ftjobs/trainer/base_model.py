"""The base model of a job on this rank: fetched (hf://, s3://, file://), loaded through
the task adapter in the right dtype, checked for export, prepared for the performance
settings and wrapped in a LoRA adapter when the spec asks for one.

Fetching: hf:// models come through `trainer.hub` (cache prefix, once per node); file://
is used in place; other schemes are downloaded once per node by local rank 0, all or
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.storage import ObjectNotFound, ObjectStore, open_store
from ftjobs.storage.manifest import download_prefix
from ftjobs.storage.uri import parse_uri
from ftjobs.trainer.errors import ModelError
from ftjobs.trainer.export import export_blocker
from ftjobs.trainer.hub import fetch_hub_model
from ftjobs.trainer.performance import load_options, prepare_model
from ftjobs.trainer.runtime import World, barrier
from ftjobs.trainer.setup_checks import check_export_space
from ftjobs.trainer.tasks import TaskAdapter

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def model_dtype(spec: FineTuneJobSpec) -> torch.dtype:
    """model.dtype, with auto following the training precision."""
    wanted = spec.model.dtype
    if wanted == "auto":
        return torch.bfloat16 if spec.deepspeed.precision == "bf16" else torch.float32
    return _DTYPES[wanted]


def fetch_model(spec: FineTuneJobSpec, scratch: Path, world: World) -> Path:
    """A local folder with the base model (downloaded once per node from its store)."""
    uri = spec.model.location
    storage = spec.storage
    if uri.startswith("hf://"):
        return fetch_hub_model(
            spec.model,
            target=scratch / "model",
            world=world,
            open_cache=lambda prefix: open_store(prefix, storage=storage),
        )
    parsed = parse_uri(uri)
    if parsed.scheme == "file":
        assert parsed.path is not None
        if not parsed.path.exists():
            raise ModelError(f"model {uri} does not exist")
        return parsed.path
    target = scratch / "model"
    if world.local_rank == 0:
        store = open_store(uri, storage=storage)
        if not target.exists():
            _download_model(store, target)
    barrier()
    return target


def load_base_model(
    task: TaskAdapter,
    spec: FineTuneJobSpec,
    model_dir: Path,
    *,
    labels: list[str] | None,
    world: World,
    scratch: Path,
) -> tuple[torch.nn.Module, Any]:
    """(model ready for the engine, tokenizer); a ModelError names what cannot work."""
    perf, dtype = spec.performance, model_dtype(spec)
    options = load_options(perf, dtype=dtype, device_index=world.local_rank)
    try:
        model, tokenizer = task.load_model(
            model_dir, labels=labels, dtype=dtype, gguf_file=spec.model.gguf_file, options=options
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ModelError(f"cannot load model {spec.model.uri}: {e}") from e
    if (blocker := export_blocker(model)) is not None:
        # Found before training: otherwise the run would fail only at export.
        raise ModelError(f"model {spec.model.uri} cannot be exported: {blocker}")
    if world.is_main:  # rank 0 writes the export to its scratch volume
        check_export_space(model, spec, scratch)
    model = prepare_model(model, perf)
    if spec.lora is not None:
        model = _with_lora(model, spec, task)
    return model, tokenizer


def _with_lora(model: torch.nn.Module, spec: FineTuneJobSpec, task: TaskAdapter) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = spec.lora
    assert lora is not None
    encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,  # None: peft's defaults for the architecture
        task_type=task.peft_task_type(encoder_decoder),
    )
    peft_model: torch.nn.Module = get_peft_model(model, peft_config)
    return peft_model


def _download_model(store: ObjectStore, target: Path) -> None:
    """Every object under the model's prefix into `target` (a Hugging Face folder).

    All or nothing (`download_prefix`): a download cut short leaves no `target`, so the
    next attempt on this node downloads again instead of loading half a model. A missing
    bucket or an empty prefix is a ModelError (permanent) naming the URI.
    """
    try:
        download_prefix(store, target)
    except ObjectNotFound as e:
        raise ModelError(f"model {store.uri}: {e}") from None
