"""spec.tracking.mlflow against a real MLflow server (SQLite backend, artifacts on the
test S3): one run per attempt holds the spec as params, the same train loss the job's
progress.jsonl has, the test metrics, and the job's report files as artifacts, which
land as objects in the S3 bucket behind the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.mlflow import ARTIFACT_BUCKET
from tests.training.trainer_run import REPO, classification_spec

FTJOBS = str(Path(sys.executable).parent / "ftjobs")


def test_a_run_logs_params_metrics_and_artifacts_to_mlflow(
    tmp_path: Path,
    tiny_model_dir: Callable[..., Path],
    tiny_data_dir: Callable[..., Path],
    mlflow_server: Any,
    s3_client: Any,
) -> None:
    from mlflow.tracking import MlflowClient

    model = tiny_model_dir("sequence-classification")
    data = tiny_data_dir("sequence-classification", n=160) / "train.jsonl"
    experiment = f"ftjobs-test-{uuid.uuid4().hex[:8]}"
    spec = classification_spec(model, data, tmp_path / "out")
    spec["resources"] = {"nodes": 1}
    spec["hyperparameters"]["maxSteps"] = 8
    spec["evaluation"] = {"everySteps": 4}
    spec["tracking"] = {"mlflow": {"trackingUri": mlflow_server.url, "experiment": experiment}}
    job = {"apiVersion": "ftjobs.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "ml"}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({**job, "spec": spec}))

    result = subprocess.run(
        [FTJOBS, "run", str(tmp_path / "job.yaml"), "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job_dir = tmp_path / "out" / "local" / "ml"
    summary = json.loads((job_dir / "summary.json").read_text())
    records = [json.loads(line) for line in (job_dir / "progress.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in records if r.get("event") == "progress"}

    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "ml-attempt-1"
    assert run.data.tags["ftjobs.job"] == "ml"
    assert float(run.data.params["hyperparameters.learningRate"]) == 2e-2
    assert run.data.params["task"] == "sequence-classification"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert {m.step: round(m.value, 6) for m in history} == losses
    assert [m.step for m in client.get_metric_history(run.info.run_id, "validation/loss")] == [4, 8]
    tuned = summary["metrics"]["fineTuned"]["accuracy"]
    assert run.data.metrics["test/accuracy/fineTuned"] == tuned

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "data-report.json", "loss.png", "report.html"} <= artifacts
    # Through the server into the S3 bucket, byte for byte.
    keys = [
        o["Key"]
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACT_BUCKET)
        for o in page.get("Contents", [])
        if run.info.run_id in o["Key"]
    ]
    summary_key = next(k for k in keys if k.endswith("/summary.json"))
    stored = s3_client.get_object(Bucket=ARTIFACT_BUCKET, Key=summary_key)["Body"].read()
    assert stored == (job_dir / "summary.json").read_bytes()
