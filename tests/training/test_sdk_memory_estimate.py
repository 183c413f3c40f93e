"""ftjobs.sdk.memory reimplements DeepSpeed's closed-form estimators (the SDK may not
import DeepSpeed); here, where DeepSpeed is installed, the numbers must be DeepSpeed's."""

from __future__ import annotations

import itertools

import pytest

from ftjobs.sdk import memory

P = 6_738_415_616  # Llama-2-7B
LAYER = 131_072_000  # its embedding matrix


@pytest.mark.parametrize(
    ("gpus", "nodes", "offload"), list(itertools.product([1, 8], [1, 4], [False, True]))
)
def test_zero2_matches_deepspeed(gpus: int, nodes: int, offload: bool) -> None:
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    cpu, gpu = estimate_zero2_model_states_mem_needs(
        P, num_gpus_per_node=gpus, num_nodes=nodes, cpu_offload=offload
    )
    ours = memory.estimate(
        P,
        largest_layer_params=LAYER,
        zero_stage=2,
        gpus_per_node=gpus,
        nodes=nodes,
        offload_optimizer=offload,
    )
    assert (ours.cpu_bytes, ours.gpu_bytes) == (cpu, gpu)


@pytest.mark.parametrize(
    ("gpus", "nodes", "offload", "offload_params"),
    [
        (g, n, o, op)
        for g, n, o, op in itertools.product([1, 8], [1, 4], [False, True], [False, True])
        if o or not op  # parameter offload implies optimizer offload
    ],
)
def test_zero3_matches_deepspeed(
    gpus: int, nodes: int, offload: bool, offload_params: bool
) -> None:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
        P,
        LAYER,
        num_gpus_per_node=gpus,
        num_nodes=nodes,
        cpu_offload=offload,
        cpu_offload_params=offload_params,
        zero_init=True,
    )
    ours = memory.estimate(
        P,
        largest_layer_params=LAYER,
        zero_stage=3,
        gpus_per_node=gpus,
        nodes=nodes,
        offload_optimizer=offload,
        offload_parameters=offload_params,
    )
    assert (ours.cpu_bytes, ours.gpu_bytes) == (cpu, gpu)
