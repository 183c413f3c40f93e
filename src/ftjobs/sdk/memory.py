"""Closed-form per-GPU memory of a model's training states, by ZeRO stage.

No torch, no DeepSpeed: the formulas are DeepSpeed's own estimators, reimplemented
(`deepspeed.runtime.zero.stage_1_and_2.estimate_zero2_model_states_mem_needs` and
`deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs`, documented in
DeepSpeed's "Memory Requirements" page), plus stages 0 and 1 from the ZeRO paper
(Rajbhandari et al. 2020, §5: mixed-precision Adam keeps 2 + 2 + 12 = 16 bytes per
parameter; stage 1 (P_os) shards the 12 optimizer bytes: 4Ψ + 12Ψ/N).

They count model states only (parameters, gradients, optimizer states), not activations,
which depend on batch and sequence length; preflight reports them as a lower bound.
tests/training/test_sdk_memory_estimate.py checks the numbers against DeepSpeed itself.
The parameter count comes from a Hugging Face config.json when storage has one, else
from the model's name (`...-7B`, `...-125m`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# DeepSpeed's estimators multiply the CPU-side figures by this buffer factor.
BUFFER_FACTOR = 1.5
GiB = 1024**3


@dataclass(frozen=True)
class Estimate:
    gpu_bytes: int  # per GPU, model states only
    cpu_bytes: int  # per node (offload, and the fp32 copy DeepSpeed gathers when saving)
    formula: str


def estimate(
    params: int,
    *,
    largest_layer_params: int,
    zero_stage: int,
    gpus_per_node: int,
    nodes: int,
    offload_optimizer: bool = False,
    offload_parameters: bool = False,
    trainable_params: int | None = None,
    frozen_bytes_per_param: float = 2.0,
) -> Estimate:
    """Per-GPU bytes of parameters + gradients + Adam states for full fine-tuning.

    With `trainable_params` (LoRA), the frozen weights cost `frozen_bytes_per_param` each
    (2 in bf16/fp16, 0.5 in 4-bit NF4 for QLoRA; sharded only by ZeRO-3) and the 16-byte
    training states apply to the trainable ones.
    """
    gpus = max(gpus_per_node, 1)
    total_gpus = gpus * max(nodes, 1)
    if trainable_params is not None:
        return _lora_estimate(
            params,
            trainable_params,
            largest_layer_params=largest_layer_params,
            zero_stage=zero_stage,
            gpus_per_node=gpus_per_node,
            nodes=nodes,
            offload_optimizer=offload_optimizer,
            offload_parameters=offload_parameters,
            frozen_bytes_per_param=frozen_bytes_per_param,
        )
    if zero_stage == 0:
        # Replicated: fp16 params (2) + fp16 grads (2) + fp32 master, momentum, variance (12).
        return Estimate(16 * params, 0, "16 B/param (ZeRO paper, stage 0)")
    if zero_stage == 1:
        if offload_optimizer:
            return Estimate(4 * params, int(params * 16 * BUFFER_FACTOR), "4 B/param + offload")
        return Estimate(
            4 * params + 12 * params // total_gpus, 0, "4 B/param + 12 B/param / GPUs (stage 1)"
        )
    if zero_stage == 2:
        # estimate_zero2_model_states_mem_needs: 2 = fp16 params; 18 = fp16 and fp32 grads
        # (2 + 4), fp32 master params (4), Adam momentum and variance (8), sharded over N.
        if offload_optimizer:
            cpu = int(params * max(4 * total_gpus, 16) * BUFFER_FACTOR)
            return Estimate(2 * params, cpu, "DeepSpeed ZeRO-2 estimator, optimizer offload")
        cpu = int(params * 4 * gpus * BUFFER_FACTOR)
        return Estimate(
            2 * params + int(18 * params / total_gpus),
            cpu,
            "DeepSpeed ZeRO-2 estimator: 2Ψ + 18Ψ/N",
        )
    return _zero3_estimate(
        params,
        largest_layer_params=largest_layer_params,
        gpus=gpus,
        nodes=nodes,
        offload_optimizer=offload_optimizer,
        offload_parameters=offload_parameters,
    )


def _lora_estimate(
    params: int,
    trainable_params: int,
    *,
    largest_layer_params: int,
    zero_stage: int,
    gpus_per_node: int,
    nodes: int,
    offload_optimizer: bool,
    offload_parameters: bool,
    frozen_bytes_per_param: float,
) -> Estimate:
    """Frozen weights at their storage width (sharded only by ZeRO-3) + the trainable
    ones' full training states."""
    total_gpus = max(gpus_per_node, 1) * max(nodes, 1)
    frozen = params - trainable_params
    frozen_bytes = int(frozen_bytes_per_param * frozen) // (total_gpus if zero_stage == 3 else 1)
    inner = estimate(
        trainable_params,
        largest_layer_params=min(largest_layer_params, trainable_params),
        zero_stage=zero_stage,
        gpus_per_node=gpus_per_node,
        nodes=nodes,
        offload_optimizer=offload_optimizer,
        offload_parameters=offload_parameters,
    )
    return Estimate(
        inner.gpu_bytes + frozen_bytes,
        inner.cpu_bytes,
        f"LoRA: {frozen_bytes_per_param:g} B x frozen params + ({inner.formula}) over trainable",
    )


def _zero3_estimate(
    params: int,
    *,
    largest_layer_params: int,
    gpus: int,
    nodes: int,
    offload_optimizer: bool,
    offload_parameters: bool,
) -> Estimate:
    total_gpus = gpus * max(nodes, 1)
    # zero_stage == 3: estimate_zero3_model_states_mem_needs with zero_init=True (models
    # are built partitioned), where the CPU figures scale with 1/nodes.
    largest_layer_memory = 4 * largest_layer_params
    gpus_factor = 1 / max(nodes, 1)
    if offload_optimizer and offload_parameters:
        cpu = int(params * 18 * gpus_factor * BUFFER_FACTOR)
        return Estimate(
            largest_layer_memory, cpu, "DeepSpeed ZeRO-3 estimator, params+optimizer offload"
        )
    if offload_optimizer:
        cpu = int(params * 16 * gpus_factor * BUFFER_FACTOR)
        return Estimate(
            largest_layer_memory + int(2 * params / total_gpus),
            cpu,
            "DeepSpeed ZeRO-3 estimator, optimizer offload",
        )
    cpu = int(largest_layer_params * 4 * gpus * BUFFER_FACTOR)
    return Estimate(
        largest_layer_memory + int(18 * params / total_gpus),
        cpu,
        "DeepSpeed ZeRO-3 estimator: 4 x largest layer + 18Ψ/N",
    )


# --- parameter counts --------------------------------------------------------------------

_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z0-9])", re.IGNORECASE)
_GATED = ("llama", "mistral", "mixtral", "qwen", "gemma", "phi3", "olmo", "deepseek")


def params_from_name(uri: str) -> int | None:
    """`meta-llama/Llama-3.1-8B` -> 8e9, `facebook/opt-125m` -> 125e6; None if unnamed."""
    found = _SIZE.findall(uri.rstrip("/").rsplit("/", 1)[-1])
    if not found:
        return None
    number, unit = found[-1]
    return int(float(number) * (1e9 if unit.lower() == "b" else 1e6))


def _first(cfg: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def params_from_config(cfg: dict[str, Any]) -> tuple[int, int] | None:
    """(total params, largest layer params) of a transformer from its config.json.

    Counts embeddings, attention (with grouped KV heads) and the MLP (gated for the
    Llama family), which is within a few percent of the real count for common
    architectures; norms and biases are ignored.
    """
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers
        cfg = {**cfg, **cfg["text_config"]}
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model", "dim")
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    vocab = _first(cfg, "vocab_size")
    if not (hidden and layers and vocab):
        return None
    inner = _first(cfg, "intermediate_size", "n_inner", "d_ff", "ffn_dim") or 4 * hidden
    heads = _first(cfg, "num_attention_heads", "n_head", "num_heads") or 1
    kv_heads = _first(cfg, "num_key_value_heads") or heads
    head_dim = _first(cfg, "head_dim") or hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    gated = any(g in str(cfg.get("model_type", "")).lower() for g in _GATED)
    mlp = (3 if gated else 2) * hidden * inner
    experts = _first(cfg, "num_local_experts", "n_routed_experts") or 1
    per_layer = attention + mlp * experts
    total_layers = layers + (_first(cfg, "num_decoder_layers") or 0)
    embeddings = vocab * hidden
    untied = cfg.get("tie_word_embeddings") is False
    total = total_layers * per_layer + embeddings * (2 if untied else 1)
    return total, max(per_layer, embeddings)
