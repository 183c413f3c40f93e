"""`ftjobs run`: a spec file on this machine, 2 simulated nodes, progress and a final table."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.training.trainer_run import REPO, classification_spec

# The installed console script, next to the interpreter running the tests.
FTJOBS = str(Path(sys.executable).parent / "ftjobs")


def test_ftjobs_run_two_simulated_nodes(
    tmp_path: Path, tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    model = tiny_model_dir("sequence-classification")
    data = tiny_data_dir("sequence-classification", n=160) / "train.jsonl"
    spec = classification_spec(model, data, Path("/nonexistent/overridden"))
    spec["resources"] = {"nodes": 1}  # `ftjobs run` replaces it with the local layout
    job = {"apiVersion": "ftjobs.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "cli"}}
    job["spec"] = spec
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))

    result = subprocess.run(
        [
            FTJOBS,
            "run",
            str(tmp_path / "job.yaml"),
            "--nnodes-sim",
            "2",
            "--output",
            str(tmp_path / "out"),
            "--set",
            "hyperparameters.maxSteps=20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The final table: base vs fine-tuned, the model's location.
    assert "base model" in result.stdout and "fine-tuned" in result.stdout
    assert "accuracy" in result.stdout
    job_dir = tmp_path / "out" / "local" / "cli"
    assert f"model: file://{job_dir}/model/" in result.stdout
    assert "20/20 steps" in result.stderr  # the progress bar reached the end
    summary = json.loads((job_dir / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["worldSize"] == 2
    assert summary["namespace"] == "local"


def test_ftjobs_run_reports_a_bad_spec(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "ftjobs.dev/v1alpha1",
                "kind": "FineTuneJob",
                "metadata": {"name": "bad"},
                "spec": {"task": "sequence-classification"},
            }
        )
    )
    result = subprocess.run(
        [FTJOBS, "run", str(tmp_path / "job.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "model" in result.stderr
