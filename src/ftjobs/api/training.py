"""How the model is trained: optimisation (spec.hyperparameters), LoRA (spec.lora), DeepSpeed."""

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from ftjobs.api.types import (
    ApiModel,
    RuleError,
    ShortStr,
    cel,
    nearest_multiples,
)


class Hyperparameters(ApiModel):
    """Optimisation settings."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.epochs) != has(self.maxSteps)",
                    "exactly one of epochs or maxSteps must be set",
                    ".maxSteps",
                ),
                cel(
                    "self.globalBatchSize % self.microBatchSize == 0",
                    "globalBatchSize must be a multiple of microBatchSize",
                    ".globalBatchSize",
                ),
            ]
        }
    )

    learning_rate: float = Field(default=2e-5, gt=0.0, le=1.0, description="Peak learning rate.")
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="Passes over train.")
    max_steps: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Optimizer steps (instead of epochs)."
    )
    global_batch_size: int = Field(
        default=8, ge=1, le=1_000_000, description="Samples per optimizer step, all ranks together."
    )
    micro_batch_size: int = Field(
        default=8, ge=1, le=65_536, description="Samples per forward pass on one rank."
    )
    optimizer: Literal["adamw", "adam", "sgd"] = Field(default="adamw", description="Optimizer.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        default="linear", description="Learning-rate schedule after warmup."
    )
    warmup_steps: int = Field(default=0, ge=0, description="Linear warmup steps.")
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0, description="Weight decay.")
    gradient_clipping: float = Field(
        default=1.0, ge=0.0, description="Max gradient norm; 0 disables clipping."
    )
    max_seq_length: int = Field(
        default=512, ge=8, le=1_048_576, description="Tokens per sample after truncation."
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Training seed.")

    @model_validator(mode="after")
    def _rules(self) -> "Hyperparameters":
        if (self.epochs is None) == (self.max_steps is None):
            raise RuleError("maxSteps", "exactly one of epochs or maxSteps must be set")
        if self.global_batch_size % self.micro_batch_size:
            g, m = self.global_batch_size, self.micro_batch_size
            raise RuleError(
                "globalBatchSize",
                f"globalBatchSize must be a multiple of microBatchSize: {g} is not a multiple "
                f"of {m}; nearest valid: {nearest_multiples(g, m)}",
            )
        return self


class Lora(ApiModel):
    """A LoRA adapter (PEFT) instead of full fine-tuning."""

    r: int = Field(default=8, ge=1, le=1024, description="Adapter rank.")
    alpha: int = Field(default=16, ge=1, le=4096, description="Scaling numerator (alpha / r).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Adapter dropout.")
    target_modules: list[ShortStr] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Module names to adapt; the architecture's defaults when unset.",
    )
    merge_on_export: bool = Field(
        default=False, description="Also export the base weights with the adapter merged in."
    )


class DeepSpeed(ApiModel):
    """DeepSpeed engine settings."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.offloadParameters == 'none' || self.zeroStage == 3",
                    "offloadParameters needs zeroStage 3",
                    ".offloadParameters",
                ),
                cel(
                    "self.offloadOptimizer == 'none' || self.zeroStage >= 1",
                    "offloadOptimizer needs zeroStage 1 or higher",
                    ".offloadOptimizer",
                ),
            ]
        }
    )

    zero_stage: int = Field(default=2, ge=0, le=3, description="ZeRO stage 0-3.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32", description="Training precision; fp16 needs GPUs."
    )
    offload_optimizer: Literal["none", "cpu"] = Field(
        default="none", description="Offload optimizer state to CPU memory."
    )
    offload_parameters: Literal["none", "cpu"] = Field(
        default="none", description="Offload parameters to CPU memory (ZeRO-3 only)."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Raw DeepSpeed config keys merged last over the resolved config.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @model_validator(mode="after")
    def _rules(self) -> "DeepSpeed":
        if self.offload_parameters != "none" and self.zero_stage != 3:
            raise RuleError("offloadParameters", "offloadParameters needs zeroStage 3")
        if self.offload_optimizer != "none" and self.zero_stage < 1:
            raise RuleError("offloadOptimizer", "offloadOptimizer needs zeroStage 1 or higher")
        return self
