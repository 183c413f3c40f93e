"""Checkpoints under real failures: SIGKILL of one rank, a damaged checkpoint, SIGTERM.

2 processes as 2 nodes, each with its own scratch, file:// storage, fp32 ZeRO-2.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from ftjobs.api.constants import EXIT_RETRIABLE
from tests.training.trainer_run import (
    classification_spec,
    launch,
    progress,
    run,
    wait_for,
    write_config,
)


def _weights(model_dir: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return dict(load_file(model_dir / "model.safetensors"))


def _committed(job: Path, step: int) -> bool:
    return (job / "checkpoints" / f"step-{step:09d}" / "MANIFEST.json").exists()


def test_sigkill_one_rank_then_resume_is_bit_identical_and_skips_damaged_checkpoint(
    tmp_path: Path,
    tiny_classification: tuple[Path, Path],
) -> None:
    import torch

    model, data = tiny_classification
    # Enough steps that the kill lands mid-run; checkpoint every 5, keep 3.
    overrides = {
        "hyperparameters": {"maxSteps": 120},
        "checkpointing": {"everySteps": 5, "keep": 3},
        "evaluation": {"compareBaseModel": False},
    }

    # A: uninterrupted.
    write_config(tmp_path / "a.json", classification_spec(model, data, tmp_path / "a", **overrides))
    codes, nodes = run(tmp_path / "a.json", tmp_path / "run-a")
    assert codes == [0, 0], nodes.output()[-3000:]

    # B: SIGKILL rank 1 once step 15 is committed (steps 5, 10, 15 kept).
    write_config(tmp_path / "b.json", classification_spec(model, data, tmp_path / "b", **overrides))
    job = tmp_path / "b" / "t" / "tiny"
    nodes = launch(tmp_path / "b.json", tmp_path / "run-b1")
    wait_for(lambda: _committed(job, 15), timeout=300, nodes=nodes)
    os.kill(nodes.worker_pid(1), signal.SIGKILL)
    codes = nodes.wait()
    assert codes == [EXIT_RETRIABLE, EXIT_RETRIABLE], nodes.output()[-3000:]
    assert not (job / "summary.json").exists(), "the kill came after the run had finished"
    steps = sorted(int(p.name[5:]) for p in (job / "checkpoints").glob("step-*"))
    newest = max(s for s in steps if _committed(job, s))
    assert newest < 120

    # Damage the newest checkpoint (manifest gone): resume must skip it and use the one before.
    (job / "checkpoints" / f"step-{newest:09d}" / "MANIFEST.json").unlink()
    codes, nodes = run(tmp_path / "b.json", tmp_path / "run-b2")
    assert codes == [0, 0], nodes.output()[-3000:]
    summary = json.loads((job / "summary.json").read_text())
    assert summary["resumedFromStep"] == newest - 5, summary
    assert f"resumed from file://{job}/checkpoints/step-{newest - 5:09d}/" in nodes.output()

    # Same weights, bit for bit, as the uninterrupted run.
    a = _weights(tmp_path / "a" / "t" / "tiny" / "model")
    b = _weights(job / "model")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]  # type: ignore[arg-type]
    assert not different, different
    # And the same loss curve after the resume point.
    la = {r["step"]: r["loss"] for r in progress(tmp_path / "a" / "t" / "tiny") if "loss" in r}
    lb = {r["step"]: r["loss"] for r in progress(job) if "loss" in r}
    assert all(la[s] == lb[s] for s in range(newest, 121)), (la, lb)


def test_sigterm_checkpoints_and_exits_retriable(
    tmp_path: Path,
    tiny_classification: tuple[Path, Path],
) -> None:
    model, data = tiny_classification
    spec = classification_spec(
        model,
        data,
        tmp_path / "out",
        hyperparameters={"maxSteps": 5000},
        checkpointing={"everySteps": 1000},
        evaluation={"compareBaseModel": False},
    )
    write_config(tmp_path / "job.json", spec)
    job = tmp_path / "out" / "t" / "tiny"
    nodes = launch(tmp_path / "job.json", tmp_path / "run")
    wait_for(lambda: any(r.get("step", 0) >= 3 for r in progress(job)), timeout=300, nodes=nodes)
    nodes.signal_nodes(signal.SIGTERM)  # what Kubernetes does to every pod of the job
    codes = nodes.wait(timeout=120)
    assert codes == [EXIT_RETRIABLE, EXIT_RETRIABLE], nodes.output()[-3000:]

    latest = (job / "checkpoints" / "LATEST").read_text()
    step = int(latest.removeprefix("step-"))
    assert 3 <= step < 1000
    assert _committed(job, step)
    message = nodes.termination_logs[0].read_text()
    assert "SIGTERM" in message and f"step {step}" in message, message
    assert any(r["event"] == "checkpoint" and r["step"] == step for r in progress(job))
