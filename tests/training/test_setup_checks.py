"""The trainer's setup checks: room on the scratch volume for the export, and a whole
run that stops in setup, permanently, when the scratch size cannot hold it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ftjobs.api.constants import EXIT_PERMANENT, SCRATCH_SIZE_ENV
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.setup_checks import (
    ScratchSpaceError,
    check_export_space,
    free_scratch_bytes,
    model_params,
    used_bytes,
)
from tests.training.trainer_run import classification_spec, run, write_config


def _spec(**resources: str) -> FineTuneJobSpec:
    return FineTuneJobSpec.model_validate(
        {
            "task": "causal-lm",
            "model": {"uri": "s3://models/m"},
            "dataset": {"train": "s3://data/train.jsonl"},
            "hyperparameters": {"maxSteps": 10, "microBatchSize": 1},
            "storage": {"output": "s3://out"},
            "resources": resources,
        }
    )


def _huge() -> torch.nn.Module:
    # 10^13 weights on the meta device: a real module, no memory; 40 TB in fp32.
    module = torch.nn.Module()
    module.weight = torch.nn.Parameter(torch.empty(10**7, 10**6, device="meta"))
    return module


def test_free_space_is_the_filesystems_without_a_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCRATCH_SIZE_ENV, raising=False)
    free, bound = free_scratch_bytes(tmp_path)
    assert abs(free - shutil.disk_usage(tmp_path).free) < 64 * 2**20
    assert bound == "free on the filesystem"


def test_a_size_limit_counts_what_the_volume_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0" * 300_000)
    monkeypatch.setenv(SCRATCH_SIZE_ENV, "1Mi")
    assert used_bytes(tmp_path) == 300_000
    assert free_scratch_bytes(tmp_path) == (2**20 - 300_000, "spec.resources.scratchSize 1Mi")


def test_the_filesystem_bounds_a_huge_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCRATCH_SIZE_ENV, raising=False)
    model = _huge()
    assert model_params(model) == 10**13
    with pytest.raises(ScratchSpaceError) as caught:
        check_export_space(model, _spec(), tmp_path)
    message = str(caught.value)
    assert f"under {tmp_path}" in message
    assert "10,000,000,000,000 weights x 4 bytes" in message
    assert "free on the filesystem" in message
    assert "set spec.resources.scratchSize to at least" in message
    assert not caught.value.retriable


def test_a_small_model_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Negative control: the same check passes when the export fits.
    monkeypatch.setenv(SCRATCH_SIZE_ENV, "1Gi")
    check_export_space(torch.nn.Linear(64, 64), _spec(), tmp_path)


def test_a_run_whose_scratch_size_cannot_hold_the_export_stops_in_setup(
    tmp_path: Path, tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    spec = classification_spec(
        tiny_model_dir("sequence-classification"),
        tiny_data_dir("sequence-classification", n=64) / "train.jsonl",
        tmp_path / "o",
        # One process: no peer waits for the failed rank before its own exit.
        resources={"nodes": 1, "scratchSize": "1Mi"},
    )
    write_config(tmp_path / "job.json", spec)
    # What the rendered pod (and `ftjobs run`) set from spec.resources.scratchSize.
    codes, nodes = run(
        tmp_path / "job.json", tmp_path / "run", nnodes=1, env={SCRATCH_SIZE_ENV: "1Mi"}
    )
    assert codes == [EXIT_PERMANENT], nodes.output()[-3000:]
    messages = [t.read_text() for t in nodes.termination_logs if t.exists()]
    assert any(
        m.startswith("ScratchSpaceError") and "spec.resources.scratchSize 1Mi" in m
        for m in messages
    ), messages
    # Nothing was trained: no checkpoint, no model.
    assert not list((tmp_path / "o").rglob("checkpoints/*")), list((tmp_path / "o").rglob("*"))
