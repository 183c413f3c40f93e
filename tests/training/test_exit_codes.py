"""Exit codes the controller trusts: permanent for bad data, 0 for every clean run.

The clean-run loop proves the deterministic exit (barrier, destroy the process group,
flush, os._exit): without it, gloo aborts a rank during interpreter shutdown in ~5 % of
runs. Each run costs ~10 s of 2 shared CPUs (mostly importing torch/DeepSpeed/
transformers in 2 processes), so the default here is 5 runs and the issue's full proof is
`FTJOBS_EXIT_LOOP_RUNS=50 pytest tests/training/test_exit_codes.py -k clean` (50/50 exited 0
in 512 s when recorded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE
from tests.training.trainer_run import classification_spec, run, write_config

LOOP_RUNS = int(os.environ.get("FTJOBS_EXIT_LOOP_RUNS", "5"))


def test_bad_data_exits_permanent_naming_file_row_and_field(
    tmp_path: Path, tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    rows = (tiny_data_dir("sequence-classification", n=64) / "train.jsonl").read_text()
    lines = rows.splitlines()
    broken = json.loads(lines[6])
    del broken["label"]  # row 7 (1-based) lacks its label
    lines[6] = json.dumps(broken)
    train = tmp_path / "bad.jsonl"
    train.write_text("\n".join(lines) + "\n")

    spec = classification_spec(tiny_model_dir("sequence-classification"), train, tmp_path / "o")
    write_config(tmp_path / "job.json", spec)
    codes, nodes = run(tmp_path / "job.json", tmp_path / "run")
    assert codes == [EXIT_PERMANENT, EXIT_PERMANENT], nodes.output()[-3000:]
    for term in nodes.termination_logs:
        message = term.read_text()
        assert str(train) in message and "row 7" in message and "'label'" in message, message
        assert message.startswith("DataError")


def test_clean_runs_all_exit_zero(
    tmp_path: Path, tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    model = tiny_model_dir("sequence-classification")
    data = tiny_data_dir("sequence-classification", n=64) / "train.jsonl"
    failures = []
    for i in range(LOOP_RUNS):
        spec = classification_spec(
            model,
            data,
            tmp_path / f"o{i}",
            hyperparameters={"maxSteps": 2},
            checkpointing={"everySteps": 2},
            evaluation={"compareBaseModel": False, "maxSamples": 4},
        )
        write_config(tmp_path / f"job{i}.json", spec)
        codes, nodes = run(tmp_path / f"job{i}.json", tmp_path / f"run{i}")
        if codes != [0, 0]:
            failures.append((i, codes, nodes.output()[-2000:]))
    assert not failures, failures


def _raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except BaseException as e:
        return e
    raise AssertionError("no exception")


def test_torch_error_before_the_first_step_is_permanent_after_it_retriable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from ftjobs.trainer import failures
    from ftjobs.trainer.__main__ import classify

    # A real torch RuntimeError: what a config the model cannot run raises on every attempt.
    error = _raised(lambda: torch.zeros(2, 3) @ torch.zeros(2, 3))
    assert isinstance(error, RuntimeError)
    monkeypatch.setattr(failures, "_stepped", False)
    assert classify(error) == EXIT_PERMANENT
    message = failures.describe(error, after_first_step=False)
    assert "cannot be multiplied" in message and "not retried" in message
    monkeypatch.setattr(failures, "_stepped", True)  # after a step: may be transient
    assert classify(error) == EXIT_RETRIABLE
    # A lost peer is retriable at any time (gloo's message when the other rank is gone).
    lost = RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [10.0.0.2]:7")
    monkeypatch.setattr(failures, "_stepped", False)
    assert classify(lost) == EXIT_RETRIABLE
    assert classify(torch.distributed.DistBackendError("NCCL error: unhandled")) == EXIT_RETRIABLE


def test_cuda_oom_at_the_first_step_is_permanent_and_names_the_knobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from ftjobs.trainer import failures
    from ftjobs.trainer.__main__ import classify

    # Constructed, not caused: there is no GPU here to run out of (a named stand-in).
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)")
    monkeypatch.setattr(failures, "_stepped", False)
    assert classify(oom) == EXIT_PERMANENT
    message = failures.describe(oom, after_first_step=False)
    for knob in (
        "hyperparameters.microBatchSize",
        "performance.gradientCheckpointing",
        "deepspeed.zeroStage",
        "deepspeed.offloadOptimizer",
    ):
        assert knob in message, message
    assert "Tried to allocate 2.00 GiB" in message
    monkeypatch.setattr(failures, "_stepped", True)
    assert classify(oom) == EXIT_RETRIABLE
