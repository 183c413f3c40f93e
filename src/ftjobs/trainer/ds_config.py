"""The DeepSpeed config resolved from a FineTuneJob spec.

`resolve_ds_config` is a pure function (spec + world size + planned steps -> dict), so the
config is easy to test and is written verbatim to `<output>/ds_config.json`: what ran is
what was recorded. `deepspeed.overrides` from the spec is merged last (deep merge), so
users can set anything DeepSpeed supports without a new spec field.
"""

from __future__ import annotations

import copy
from typing import Any

from ftjobs.api.errors import PermanentError
from ftjobs.api.spec import FineTuneJobSpec

# Logging every N steps is the trainer's job (progress.jsonl); keep DeepSpeed quiet.
_QUIET_STEPS = 1_000_000_000


class ConfigError(PermanentError):
    """The spec cannot run as asked on this world size (a permanent error)."""


def gradient_accumulation(spec: FineTuneJobSpec, world_size: int) -> int:
    """Micro-batches per optimizer step on each rank, so all ranks add up to the global batch."""
    hp = spec.hyperparameters
    per_pass = hp.micro_batch_size * world_size
    if hp.global_batch_size % per_pass:
        raise ConfigError(
            f"hyperparameters.globalBatchSize {hp.global_batch_size} is not divisible by "
            f"microBatchSize {hp.micro_batch_size} x {world_size} processes"
        )
    return hp.global_batch_size // per_pass


def _scheduler(spec: FineTuneJobSpec, total_steps: int) -> dict[str, Any] | None:
    hp = spec.hyperparameters
    # DeepSpeed's schedulers refuse 0 warmup steps (and warm up over at least 2).
    warmup = max(1, min(hp.warmup_steps, total_steps))
    if hp.scheduler == "constant":
        if hp.warmup_steps == 0:
            return None  # the optimizer's lr, unchanged
        return {
            "type": "WarmupLR",
            "params": {
                "warmup_min_lr": 0.0,
                "warmup_max_lr": hp.learning_rate,
                "warmup_num_steps": warmup,
                "warmup_type": "linear",
            },
        }
    if hp.scheduler == "cosine":
        return {
            "type": "WarmupCosineLR",
            "params": {
                "total_num_steps": max(total_steps, 1),
                "warmup_num_steps": warmup,
                "warmup_min_ratio": 0.0,
                "cos_min_ratio": 0.0,
                "warmup_type": "linear",
            },
        }
    return {  # linear: warm up, then decay linearly to 0 at the last step
        "type": "WarmupDecayLR",
        "params": {
            "total_num_steps": max(total_steps, 1),
            "warmup_min_lr": 0.0,
            "warmup_max_lr": hp.learning_rate,
            "warmup_num_steps": warmup,
            "warmup_type": "linear",
        },
    }


def _optimizer(spec: FineTuneJobSpec, *, cuda: bool) -> dict[str, Any] | None:
    hp = spec.hyperparameters
    if hp.optimizer == "sgd":
        return None  # DeepSpeed has no SGD config type; the recipe passes torch's SGD
    # torch's fused kernel (one launch for all tensors) where the optimizer state lives on
    # a GPU; it is part of torch, so no native build either.
    fused = cuda and spec.performance.fused_optimizer and spec.deepspeed.offload_optimizer == "none"
    return {
        "type": "AdamW" if hp.optimizer == "adamw" else "Adam",
        "params": {
            "lr": hp.learning_rate,
            "betas": [0.9, 0.999],
            "eps": 1e-8,
            "weight_decay": hp.weight_decay,
            # torch's Adam(W): DeepSpeed's fused/CPU Adam would be built natively on first
            # use (minutes). Opt back in through overrides when it pays off.
            "torch_adam": True,
            **({"fused": True} if fused else {}),
            **({"adam_w_mode": False} if hp.optimizer == "adam" else {}),
        },
    }


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in: nested dicts merge, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_ds_config(
    spec: FineTuneJobSpec, world_size: int, total_steps: int, *, cuda: bool = False
) -> dict[str, Any]:
    """The DeepSpeed config for `spec` on `world_size` processes running `total_steps` steps.

    `cuda`: the ranks train on CUDA devices (decides GPU-only kernels such as fused AdamW).
    """
    hp, ds = spec.hyperparameters, spec.deepspeed
    gas = gradient_accumulation(spec, world_size)
    zero: dict[str, Any] = {"stage": ds.zero_stage}
    if ds.offload_optimizer != "none":
        zero["offload_optimizer"] = {"device": ds.offload_optimizer, "pin_memory": False}
    if ds.offload_parameters != "none":
        zero["offload_param"] = {"device": ds.offload_parameters, "pin_memory": False}
    if ds.zero_stage == 3:
        # Export gathers the full weights itself; no 16-bit copy at every save.
        zero["stage3_gather_16bit_weights_on_model_save"] = False

    config: dict[str, Any] = {
        "train_batch_size": hp.global_batch_size,
        "train_micro_batch_size_per_gpu": hp.micro_batch_size,
        "gradient_accumulation_steps": gas,
        "gradient_clipping": hp.gradient_clipping,
        "zero_optimization": zero,
        "bf16": {"enabled": ds.precision == "bf16"},
        "fp16": {"enabled": ds.precision == "fp16"},
        "steps_per_print": _QUIET_STEPS,
        "wall_clock_breakdown": False,
        # The recipe seeds and orders data itself; no DeepSpeed dataloader.
        "dataloader_drop_last": True,
    }
    if (optimizer := _optimizer(spec, cuda=cuda)) is not None:
        config["optimizer"] = optimizer
    else:
        config["zero_allow_untested_optimizer"] = True
    if ds.offload_optimizer != "none":
        # Offload normally insists on DeepSpeed's native CPU Adam; torch's works (slower
        # per step, no native build).
        config["zero_force_ds_cpu_optimizer"] = False
    if (scheduler := _scheduler(spec, total_steps)) is not None:
        config["scheduler"] = scheduler
    return deep_merge(config, ds.overrides)
