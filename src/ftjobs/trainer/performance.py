"""`spec.performance` applied to the model: attention kernel, activation checkpointing,
4-bit base weights (QLoRA), packing's forward settings and torch.compile.

The spec already refuses combinations that cannot work anywhere (flash attention or QLoRA
without GPUs, packing outside causal-lm); what is left here is what only the trainer's
machine can know: whether the optional packages are installed and whether CUDA is there.
Each refusal is a ConfigError (permanent: a retry would fail the same way) naming the
spec field to change.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch

from ftjobs.api.performance import Performance
from ftjobs.trainer.ds_config import ConfigError

log = logging.getLogger("ftjobs.trainer")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def load_options(perf: Performance, *, dtype: torch.dtype, device_index: int) -> dict[str, Any]:
    """Extra `from_pretrained` keyword arguments for `perf` (attention kernel, 4-bit).

    sdpa passes nothing: transformers then picks SDPA where the architecture has it and
    eager where it does not, so the default never refuses a model.
    """
    options: dict[str, Any] = {}
    if perf.attention == "eager":
        options["attn_implementation"] = "eager"
    elif perf.attention == "flash_attention_2":
        if not _installed("flash_attn"):
            raise ConfigError(
                "performance.attention: flash_attention_2 needs the flash-attn package, which "
                "this trainer image does not have; use sdpa or a trainer image with flash-attn"
            )
        options["attn_implementation"] = "flash_attention_2"
    if perf.quantization == "nf4":
        if not torch.cuda.is_available():
            raise ConfigError("performance.quantization: nf4 (QLoRA) needs a CUDA GPU")
        if not _installed("bitsandbytes"):
            raise ConfigError(
                "performance.quantization: nf4 needs the bitsandbytes package, which this "
                "trainer image does not have; set quantization: none or use an image with it"
            )
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16,
            # Frozen 4-bit weights stored as bf16-sized blocks, so DeepSpeed's flattening
            # and dtype casts leave them alone.
            bnb_4bit_quant_storage=dtype if dtype != torch.float32 else torch.bfloat16,
        )
        # bitsandbytes quantizes while loading onto the device; each rank loads its own copy.
        options["device_map"] = {"": device_index}
    return options


def prepare_model(model: torch.nn.Module, perf: Performance) -> torch.nn.Module:
    """Settings on the loaded model (before LoRA wraps it); returns the model to train."""
    config = getattr(model, "config", None)
    if perf.quantization != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=perf.gradient_checkpointing
        )
    if perf.gradient_checkpointing:
        # Non-reentrant checkpointing: works with frozen inputs (LoRA) and with DeepSpeed.
        kwargs = {"use_reentrant": False}
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:  # transformers >= 5.23
            enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)  # type: ignore[operator]
    if config is not None and (perf.gradient_checkpointing or perf.packing):
        # No KV cache while training: a cache turns off packed-sequence masking in
        # transformers (samples would attend across their boundaries) and is useless for
        # checkpointed recomputation. Generation turns it back on through its own config.
        config.use_cache = False
    if config is not None:
        log.info(
            "model: attention %s, activation checkpointing %s, quantization %s",
            getattr(config, "_attn_implementation", "?"),
            "on" if perf.gradient_checkpointing else "off",
            perf.quantization,
        )
    return model


def compile_engine(engine: Any, perf: Performance) -> None:
    """torch.compile the engine's module in place (DeepSpeed keeps its own hooks and state)."""
    if perf.compile:
        engine.compile()


__all__ = ["compile_engine", "load_options", "prepare_model"]
