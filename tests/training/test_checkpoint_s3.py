"""The trainer against the real test S3 server (versitygw): model, streamed data, outputs.

2 processes as 2 nodes with separate scratch directories: every rank uploads its own
checkpoint files and rank 0 commits the manifest, so the checkpoints in S3 are complete
although no node ever saw the other's files.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.s3 import S3Server
from tests.training.tensorboard_s3 import serve_scalars, user_env
from tests.training.trainer_run import classification_spec, run, write_config


def _upload_tree(client: Any, bucket: str, prefix: str, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root)}")


def test_streaming_from_s3_checkpoints_and_model_land_in_s3(
    tmp_path: Path,
    s3_server: S3Server,
    s3_client: Any,
    bucket: str,
    tiny_model_dir: Callable[..., Path],
    tiny_data_dir: Callable[..., Path],
) -> None:
    _upload_tree(s3_client, bucket, "models/tiny", tiny_model_dir("sequence-classification"))
    data = tiny_data_dir("sequence-classification", n=160)
    s3_client.upload_file(str(data / "train.jsonl"), bucket, "data/train.jsonl")

    spec = classification_spec(
        Path("unused"),
        Path("unused"),
        Path("unused"),
        model={"uri": f"s3://{bucket}/models/tiny"},
        dataset={"train": f"s3://{bucket}/data/train.jsonl", "streaming": True},
        storage={"output": f"s3://{bucket}/out", "endpoint": s3_server.endpoint_url},
        hyperparameters={"maxSteps": 12},
        checkpointing={"everySteps": 4, "keep": 2},
    )
    write_config(tmp_path / "job.json", spec)
    codes, nodes = run(tmp_path / "job.json", tmp_path / "run", env=s3_server.env())
    assert codes == [0, 0], nodes.output()[-4000:]

    def get(key: str) -> bytes:
        body: bytes = s3_client.get_object(Bucket=bucket, Key=f"out/t/tiny/{key}")["Body"].read()
        return body

    keys = {
        o["Key"].removeprefix("out/t/tiny/")
        for page in s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="out/t/tiny/"
        )
        for o in page.get("Contents", [])
    }
    assert get("checkpoints/LATEST") == b"step-000000012"
    for step in ("step-000000008", "step-000000012"):
        manifest = json.loads(get(f"checkpoints/{step}/MANIFEST.json"))
        files = {f["path"]: f["size"] for f in manifest["files"]}
        # Both ranks' shards and states, each uploaded by the rank that wrote it.
        assert {"trainer-state-rank-00000.pt", "trainer-state-rank-00001.pt"} <= files.keys()
        assert any(p.startswith("zero_pp_rank_1_") for p in files)
        for path in files:
            assert f"checkpoints/{step}/{path}" in keys
        assert not any(k.startswith(f"checkpoints/{step}/_parts/") for k in keys)
    assert not any(k.startswith("checkpoints/step-000000004/") for k in keys)  # retention
    assert {"model/MANIFEST.json", "model/config.json", "model/model.safetensors"} <= keys
    summary = json.loads(get("summary.json"))
    assert summary["outputModel"] == f"s3://{bucket}/out/t/tiny/model/"
    assert summary["steps"] == 12
    report = json.loads(get("data-report.json"))
    assert report["streaming"] is True
    # Credentials never reach the outputs or the logs.
    assert s3_server.secret_key not in nodes.output()
    assert s3_server.secret_key.encode() not in get("progress.jsonl")

    # TensorBoard reads the job's event files straight from S3, as `tensorboard --logdir
    # s3://.../tb` does for a user: no TensorFlow (its stub's boto3 filesystem).
    assert importlib.util.find_spec("tensorflow") is None
    records = [json.loads(line) for line in get("progress.jsonl").decode().splitlines()]
    losses = {r["step"]: r["loss"] for r in records if r.get("event") == "progress"}
    assert losses
    logdir = f"s3://{bucket}/out/t/tiny/tb"
    for variable in ("S3_ENDPOINT", "AWS_ENDPOINT_URL"):
        env = user_env(s3_server.env(), endpoint_variable=variable)
        rows, log = serve_scalars(logdir, env, "train/loss")
        assert [int(step) for _, step, _ in rows] == sorted(losses), (variable, log[-2000:])
        assert all(abs(value - losses[int(step)]) < 1e-5 for _, step, value in rows)
        assert s3_server.secret_key not in log
