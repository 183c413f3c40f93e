"""bench/gpu-check.sh's CPU smoke mode, so the GPU check is known to run end to end before a
GPU machine ever sees it: the causal-lm task (LoRA, packing, activation checkpointing)
trains, takes SIGTERM after a checkpoint, exits retriable and resumes to the end with the
loss falling; then the benchmark's core rows (ftjobs trainer, plain DeepSpeed loop,
transformers.Trainer) each produce a row. The other tasks run the same code; the whole
smoke run is `SMOKE=1 bash bench/gpu-check.sh` (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.training.trainer_run import REPO


def test_gpu_check_smoke_resumes_and_benchmarks_on_cpu(tmp_path: Path) -> None:
    env = dict(os.environ, DS_ACCELERATOR="cpu", PYTHONPATH=f"{REPO / 'src'}:{REPO}")
    command = [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--smoke"]
    command += ["--workdir", str(tmp_path), "--tasks", "causal-lm", "--steps", "20"]
    command += ["--bench-rows", "core"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    summary = json.loads((tmp_path / "gpu-check.json").read_text())
    assert done.returncode == 0 and summary["ok"], (done.stderr[-3000:], summary)

    (task,) = summary["tasks"]
    assert task["first_exit"] == 75 and task["second_exit"] == 0
    assert task["resumed_from"] == task["stopped_at_step"] >= 5
    assert task["steps"] == 20 and task["last_quarter_loss"] < task["first_quarter_loss"]
    rows = {r["row"]: r for r in summary["benchmark"] if "row" in r}
    assert set(rows) == {"ftjobs", "plain-deepspeed", "hf-trainer"}
    assert all(r["tokens_per_s"] > 0 and r["step_s"] > 0 for r in rows.values())
    ratios = next(r for r in summary["benchmark"] if "ratio_ftjobs_over_hf" in r)
    assert ratios["ratio_ftjobs_over_plain"] > 0
