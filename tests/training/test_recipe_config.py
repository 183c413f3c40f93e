"""The DeepSpeed config resolved from a spec."""

from __future__ import annotations

from typing import Any

import pytest

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.ds_config import ConfigError, gradient_accumulation, resolve_ds_config
from tests.training.trainer_run import deep_merge


def _spec(**overrides: Any) -> FineTuneJobSpec:
    doc = {
        "task": "causal-lm",
        "model": {"uri": "file:///m"},
        "dataset": {"train": "file:///d.jsonl"},
        "hyperparameters": {"maxSteps": 100, "globalBatchSize": 32, "microBatchSize": 4},
        "resources": {"nodes": 2, "processesPerNode": 2},
        "storage": {"output": "file:///o"},
    }
    return FineTuneJobSpec.model_validate(deep_merge(doc, overrides))


def test_batch_sizes_add_up_to_the_global_batch() -> None:
    config = resolve_ds_config(_spec(), world_size=4, total_steps=100)
    assert config["train_batch_size"] == 32
    assert config["train_micro_batch_size_per_gpu"] == 4
    assert config["gradient_accumulation_steps"] == 2 == _spec().gradient_accumulation_steps
    with pytest.raises(ConfigError, match="not divisible"):
        gradient_accumulation(_spec(), world_size=3)


def test_precision_zero_offload_optimizer_and_scheduler() -> None:
    spec = _spec(
        deepspeed={"zeroStage": 3, "precision": "bf16", "offloadOptimizer": "cpu"},
        hyperparameters={"scheduler": "cosine", "warmupSteps": 10, "weightDecay": 0.1},
    )
    config = resolve_ds_config(spec, world_size=4, total_steps=100)
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    assert config["zero_optimization"]["stage"] == 3
    assert config["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert config["zero_force_ds_cpu_optimizer"] is False
    assert config["optimizer"]["type"] == "AdamW"
    assert config["optimizer"]["params"]["torch_adam"] is True
    assert config["optimizer"]["params"]["weight_decay"] == 0.1
    assert config["scheduler"]["type"] == "WarmupCosineLR"
    assert config["scheduler"]["params"]["warmup_num_steps"] == 10
    assert config["scheduler"]["params"]["total_num_steps"] == 100
    assert config["gradient_clipping"] == 1.0


def test_linear_constant_and_sgd() -> None:
    linear = resolve_ds_config(_spec(), world_size=4, total_steps=50)["scheduler"]
    assert linear["type"] == "WarmupDecayLR" and linear["params"]["total_num_steps"] == 50
    assert "scheduler" not in resolve_ds_config(
        _spec(hyperparameters={"scheduler": "constant"}), world_size=4, total_steps=50
    )
    sgd = resolve_ds_config(_spec(hyperparameters={"optimizer": "sgd"}), 4, 50)
    assert "optimizer" not in sgd and sgd["zero_allow_untested_optimizer"] is True


def test_fused_adamw_only_on_cuda_without_offload_and_when_wanted() -> None:
    def params(spec: FineTuneJobSpec, cuda: bool) -> dict[str, Any]:
        config = resolve_ds_config(spec, world_size=4, total_steps=10, cuda=cuda)
        return dict(config["optimizer"]["params"])

    assert params(_spec(), cuda=True)["fused"] is True
    assert params(_spec(hyperparameters={"optimizer": "adam"}), cuda=True)["fused"] is True
    assert "fused" not in params(_spec(), cuda=False)  # CPU: plain torch AdamW, no build
    off = _spec(performance={"fusedOptimizer": False})
    assert "fused" not in params(off, cuda=True)
    offload = _spec(deepspeed={"zeroStage": 2, "offloadOptimizer": "cpu"})
    assert "fused" not in params(offload, cuda=True)  # the optimizer state lives on the CPU
    for cuda in (True, False):
        assert params(_spec(), cuda=cuda)["torch_adam"] is True  # never DeepSpeed's native op


def test_overrides_merge_last_and_deep() -> None:
    spec = _spec(
        deepspeed={
            "zeroStage": 2,
            "overrides": {"zero_optimization": {"overlap_comm": True}, "gradient_clipping": 0.5},
        }
    )
    config = resolve_ds_config(spec, world_size=4, total_steps=10)
    assert config["zero_optimization"] == {"stage": 2, "overlap_comm": True}
    assert config["gradient_clipping"] == 0.5
