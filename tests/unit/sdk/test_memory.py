"""Per-GPU memory estimates: DeepSpeed's closed-form numbers, parameter counts."""

from __future__ import annotations

import pytest

from ftjobs.sdk import memory

P = 7_000_000_000
LAYER = 200_000_000


@pytest.mark.parametrize(
    ("stage", "offload_opt", "offload_params", "expected"),
    [
        (0, False, False, 16 * P),
        (1, False, False, 4 * P + 12 * P // 16),
        (2, False, False, 2 * P + 18 * P // 16),
        (2, True, False, 2 * P),
        (3, False, False, 4 * LAYER + 18 * P // 16),
        (3, True, False, 4 * LAYER + 2 * P // 16),
        (3, True, True, 4 * LAYER),
    ],
)
def test_gpu_bytes_follow_the_deepspeed_formulas(
    stage: int, offload_opt: bool, offload_params: bool, expected: int
) -> None:
    est = memory.estimate(
        P,
        largest_layer_params=LAYER,
        zero_stage=stage,
        gpus_per_node=8,
        nodes=2,
        offload_optimizer=offload_opt,
        offload_parameters=offload_params,
    )
    assert est.gpu_bytes == expected


def test_sharding_helps_only_from_stage_1_and_more_gpus_help_more() -> None:
    def gpu(stage: int, nodes: int) -> int:
        return memory.estimate(
            P, largest_layer_params=LAYER, zero_stage=stage, gpus_per_node=8, nodes=nodes
        ).gpu_bytes

    assert gpu(0, 1) == gpu(0, 4)
    for stage in (1, 2, 3):
        assert gpu(stage, 4) < gpu(stage, 1)
    assert gpu(3, 1) < gpu(2, 1) < gpu(1, 1) < gpu(0, 1)


def test_lora_costs_frozen_weights_plus_small_training_state() -> None:
    full = memory.estimate(P, largest_layer_params=LAYER, zero_stage=2, gpus_per_node=1, nodes=1)
    lora = memory.estimate(
        P,
        largest_layer_params=LAYER,
        zero_stage=2,
        gpus_per_node=1,
        nodes=1,
        trainable_params=P // 100,
    )
    assert 2 * P < lora.gpu_bytes < full.gpu_bytes / 4
    qlora = memory.estimate(
        P,
        largest_layer_params=LAYER,
        zero_stage=2,
        gpus_per_node=1,
        nodes=1,
        trainable_params=P // 100,
        frozen_bytes_per_param=0.5,
    )
    # The 4-bit base: 1.5 bytes less per frozen weight than the bf16 one.
    assert lora.gpu_bytes - qlora.gpu_bytes == int(1.5 * (P - P // 100))
    assert "0.5 B x frozen" in qlora.formula


@pytest.mark.parametrize(
    ("uri", "params"),
    [
        ("hf://meta-llama/Llama-3.1-8B-Instruct", 8_000_000_000),
        ("hf://facebook/opt-125m", 125_000_000),
        ("s3://models/qwen2.5-0.5b/", 500_000_000),
        ("hf://sshleifer/tiny-gpt2", None),
        ("hf://google/flan-t5-base", None),
    ],
)
def test_params_from_name(uri: str, params: int | None) -> None:
    assert memory.params_from_name(uri) == params


def test_params_from_a_llama_config_is_close_to_the_published_count() -> None:
    llama_8b = {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }
    found = memory.params_from_config(llama_8b)
    assert found is not None
    total, largest = found
    assert 7.9e9 < total < 8.1e9  # Llama 3 8B: 8.03e9
    assert largest == 128256 * 4096


def test_params_from_a_gpt2_config() -> None:
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    found = memory.params_from_config(gpt2)
    assert found is not None and 1.2e8 < found[0] < 1.3e8  # GPT-2 small: 124M


def test_config_without_sizes_is_unknown() -> None:
    assert memory.params_from_config({"model_type": "mystery"}) is None
