"""`spec.performance`: how fast and in how much memory the trainer runs, not what it learns.

One section for every speed/memory switch, so a user tuning throughput looks in one place
and the benchmark's on/off rows map one-to-one onto fields. The defaults are the ones that
are right for almost every job (SDPA attention, prefetch on, torch's fused AdamW on GPUs);
the rest cost memory or time up front and are opt-in. The cross-field rules that need the
task, LoRA or resources live with the other cross rules in `spec.py`.
"""

from typing import Literal

from pydantic import Field

from ftjobs.api.types import ApiModel

ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
QUANTIZATIONS = ("none", "nf4")


class Performance(ApiModel):
    """Speed and memory features of the trainer (none changes the task or the data)."""

    attention: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        default="sdpa",
        description="Attention kernel: sdpa (PyTorch's scaled-dot-product attention; eager "
        "where the architecture has no SDPA path), eager, or flash_attention_2 (GPUs, needs "
        "the flash-attn package in the trainer image).",
    )
    gradient_checkpointing: bool = Field(
        default=False,
        description="Recompute activations in the backward pass instead of keeping them: "
        "much less memory for about a third more compute per step.",
    )
    packing: bool = Field(
        default=False,
        description="causal-lm: concatenate tokenized samples into rows of maxSeqLength "
        "tokens (no padding). Position ids restart per sample and attention stays inside "
        "each sample. Batch sizes then count packed rows.",
    )
    fused_optimizer: bool = Field(
        default=True,
        description="Use torch's fused AdamW/Adam kernel on GPUs (no native build); CPU "
        "training and a CPU-offloaded optimizer keep the plain torch implementation.",
    )
    prefetch: bool = Field(
        default=True,
        description="Collate the next micro-batch in a background thread and copy it to "
        "the GPU from pinned memory while the current step runs.",
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the model (the first steps are slower while it compiles).",
    )
    quantization: Literal["none", "nf4"] = Field(
        default="none",
        description="QLoRA: load the frozen base weights in 4-bit NF4 (bitsandbytes) and "
        "train the lora adapter on top. Needs lora and GPUs.",
    )


__all__ = ["ATTENTION_IMPLEMENTATIONS", "QUANTIZATIONS", "Performance"]
