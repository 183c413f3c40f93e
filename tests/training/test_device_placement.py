"""Every tensor that meets the engine, the model or a collective is on the engine's device.

CI has no GPU, so the trainer runs on the fake device of tests/training/fake_device.py:
the real DeepSpeed engine computes on the CPU while the trainer is told its device is
another one, and recording wrappers flag any tensor that reaches the engine (forward,
backward), the model under evaluation (forward, generate) or a collective without having
been put on that device. Each task runs train -> validation -> checkpoint -> export, one
run resumes from a checkpoint, causal-lm exports a LoRA adapter (merged too), seq2seq
generates with a decoder-only and an encoder-decoder model.

These are the bugs a first CUDA run hit (issue 9): training batches never moved to the
engine's device, and the stop/agree flags all-reduced as a CPU tensor under NCCL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ftjobs.sdk.local import free_port
from tests.training.fake_device import FAKE, EngineOnDevice, FakeDeviceMode, Placement
from tests.training.trainer_run import REPO, classification_spec, deep_merge, write_config

SMALL = {
    "hyperparameters": {"maxSteps": 4, "globalBatchSize": 4, "microBatchSize": 2},
    "checkpointing": {"everySteps": 2, "keep": 1},
    "evaluation": {"everySteps": 2, "maxSamples": 4, "maxNewTokens": 3},
    "resources": {"nodes": 1},
}


def _spec(task: str, model: Path, data: Path, out: Path, **extra: Any) -> dict[str, Any]:
    spec = classification_spec(model, data, out)
    spec["task"] = task
    return deep_merge(deep_merge(spec, SMALL), extra)


def test_negative_control_flags_a_tensor_left_on_the_cpu() -> None:
    placement = Placement()
    engine = EngineOnDevice(lambda **batch: {"loss": batch["x"].sum()}, placement)
    with FakeDeviceMode(placement):
        engine(x=torch.ones(2))  # never moved: what the training loop did before the fix
        assert placement.violations and "engine.forward" in placement.violations[0]
        before = len(placement.violations)
        moved = torch.ones(2).to(FAKE)
        flags = torch.tensor([1.0, 0.0], device=FAKE)
        engine(x=moved + flags)  # computed from device tensors: on the device too
    assert len(placement.violations) == before, placement.violations
    assert placement.checks["engine.forward"] == 2


def test_trainer_keeps_every_tensor_on_the_engine_device(
    tmp_path: Path, tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    out = tmp_path / "out"
    data = {t: tiny_data_dir(t, n=48) / "train.jsonl" for t in ("sequence-classification",
            "causal-lm", "seq2seq", "question-answering")}  # fmt: skip
    cls_model = tiny_model_dir("sequence-classification")
    specs = {
        "cls": _spec("sequence-classification", cls_model, data["sequence-classification"], out),
        "cls-resumed": _spec(
            "sequence-classification",
            cls_model,
            data["sequence-classification"],
            out,
            hyperparameters={"maxSteps": 6},
        ),
        "lora": _spec(
            "causal-lm",
            tiny_model_dir("causal-lm"),
            data["causal-lm"],
            out,
            lora={"r": 4, "mergeOnExport": True},
        ),
        "s2s-decoder": _spec(
            "seq2seq", tiny_model_dir("seq2seq", kind="decoder"), data["seq2seq"], out
        ),
        "s2s-t5": _spec("seq2seq", tiny_model_dir("seq2seq"), data["seq2seq"], out),
        "qa": _spec(
            "question-answering",
            tiny_model_dir("question-answering"),
            data["question-answering"],
            out,
        ),
    }
    configs = []
    for name, spec in specs.items():
        # cls-resumed shares the job name of cls: it resumes from cls's step-4 checkpoint.
        write_config(tmp_path / f"{name}.json", spec, name=name.removesuffix("-resumed"))
        configs.append(str(tmp_path / f"{name}.json"))

    report = tmp_path / "report.json"
    env = dict(
        os.environ,
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        LOCAL_WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        DS_ACCELERATOR="cpu",
        OMP_NUM_THREADS="1",
        FTJOBS_SCRATCH=str(tmp_path / "scratch"),
        FTJOBS_TERMINATION_LOG=str(tmp_path / "termination-log"),
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.device_probe", str(report), *configs],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0 and report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(report.read_text())
    assert not seen["errors"], (seen["errors"], proc.stdout[-6000:], proc.stderr[-6000:])
    assert not seen["violations"], "\n".join(seen["violations"][:20])
    # Every boundary was exercised (a check that saw nothing could not fail).
    for boundary in ("engine.forward", "engine.backward", "model.forward", "model.generate",
                     "dist.all_reduce"):  # fmt: skip
        assert seen["checks"].get(boundary, 0) > 0, (boundary, seen["checks"])
    resumed = json.loads((out / "t" / "cls" / "summary.json").read_text())
    assert resumed["resumedFromStep"] == 4 and resumed["steps"] == 6, resumed
    assert (out / "t" / "lora" / "model" / "adapter_config.json").is_file()
    assert (out / "t" / "lora" / "model" / "merged" / "config.json").is_file()
