"""`ftjobs run`'s accelerator choice: all visible GPUs by default, the CPU without one.

There is no GPU on CI machines: the nvidia-smi query is passed in (the capability list a
machine would report); the CPU default is checked against this machine's real probe.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ftjobs.sdk.local import local_config, trainer_env
from ftjobs.sdk.local_gpus import (
    choose_gpus,
    local_precision,
    nvidia_smi_capabilities,
    visible_gpus,
)
from ftjobs.sdk.spec import load_job

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "quickstart-sentiment.yaml"
H200S = [9.0] * 8


def test_visible_gpus_follow_cuda_visible_devices() -> None:
    assert visible_gpus({}, lambda: H200S) == H200S
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,3"}, lambda: [7.0, 8.0, 8.6, 9.0]) == [8.0, 9.0]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, lambda: H200S) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, lambda: H200S) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,1"}, lambda: H200S) == [9.0]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,9"}, lambda: [8.0, 8.0]) == [8.0]
    assert visible_gpus({}, list) == []


def test_this_machine_without_a_gpu_runs_on_the_cpu() -> None:
    if shutil.which("nvidia-smi") is None:  # CI: the real probe finds nothing
        assert nvidia_smi_capabilities() == []
        assert choose_gpus(None, len(visible_gpus())) == 0


def test_gpus_default_to_all_visible_and_never_more() -> None:
    assert choose_gpus(None, 8) == 8
    assert choose_gpus(1, 8) == 1
    assert choose_gpus(0, 8) == 0
    assert choose_gpus(None, 0) == 0
    with pytest.raises(ValueError, match="--gpus 2: 1 GPU"):
        choose_gpus(2, 1)


def test_bf16_only_where_every_gpu_has_it_and_the_spec_is_silent() -> None:
    assert local_precision(None, 8, H200S) == "bf16"
    assert local_precision(None, 2, [8.0, 7.5]) is None  # a Turing card: no native bf16
    assert local_precision(None, 1, [8.0, 7.5]) == "bf16"  # only the first is used
    assert local_precision("fp32", 8, H200S) is None  # the spec chose
    assert local_precision(None, 0, H200S) is None  # CPU: the spec's precision


def test_local_config_with_gpus_is_the_pod_gpu_layout(tmp_path: Path) -> None:
    job = load_job(str(EXAMPLE), ())
    cpu = local_config(job, nproc=1, nnodes=1, output=str(tmp_path))
    assert cpu.spec.resources.gpus_per_node == 0 and cpu.spec.resources.processes_per_node == 1
    gpu = local_config(job, nproc=1, nnodes=1, output=str(tmp_path), gpus=1, precision="bf16")
    assert gpu.spec.resources.gpus_per_node == 1
    assert gpu.spec.resources.processes_per_node is None  # one per GPU, as in a pod
    assert gpu.spec.deepspeed.precision == "bf16"
    assert trainer_env(tmp_path, 1, gpus=1)["DS_ACCELERATOR"] == "cuda"
    assert trainer_env(tmp_path, 1)["DS_ACCELERATOR"] == "cpu"
