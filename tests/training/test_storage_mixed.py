"""Mixed schemes in one job: model and data on s3:// (versitygw), output on gs://
(fake-gcs-server), with the real trainer.

2 processes as 2 nodes with separate scratch directories. The first run is stopped by
SIGTERM (what Kubernetes sends on preemption) once a checkpoint is committed on gs://;
the second run resumes from gs:// and exports the model there. Data streams from s3://
through s3fs while the outputs go through the gs:// backend, each with its own settings
from spec.storage.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftjobs.api.constants import EXIT_RETRIABLE
from tests.fixtures.gcs import GcsServer
from tests.fixtures.s3 import S3Server
from tests.training.test_checkpoint_s3 import _upload_tree
from tests.training.trainer_run import classification_spec, launch, run, wait_for, write_config


def test_data_from_s3_outputs_to_gs_with_resume(
    tmp_path: Path,
    s3_server: S3Server,
    s3_client: Any,
    bucket: str,
    gcs_server: GcsServer,
    gcs_bucket: str,
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
        storage={
            "output": f"gs://{gcs_bucket}/out",
            "endpoint": s3_server.endpoint_url,
            # The emulator is anonymous: no credentialsSecret (its rendering is unit-tested).
            "gcs": {"endpoint": gcs_server.endpoint_url},
        },
        hyperparameters={"maxSteps": 400},
        checkpointing={"everySteps": 4, "keep": 2},
        evaluation={"compareBaseModel": False},
    )
    write_config(tmp_path / "job.json", spec)
    # Only the S3 variables in the environment: gs:// must take its server from the spec.
    env = s3_server.env()
    gcs = gcs_server.client().bucket(gcs_bucket)

    def get(key: str) -> bytes:
        data: bytes = gcs.blob(f"out/t/tiny/{key}").download_as_bytes()
        return data

    def committed() -> bool:
        return gcs.blob("out/t/tiny/checkpoints/LATEST").exists()

    nodes = launch(tmp_path / "job.json", tmp_path / "run-1", env=env)
    wait_for(committed, timeout=600, nodes=nodes)
    nodes.signal_nodes(signal.SIGTERM)
    codes = nodes.wait(timeout=300)
    assert codes == [EXIT_RETRIABLE, EXIT_RETRIABLE], nodes.output()[-4000:]
    latest = get("checkpoints/LATEST").decode()
    stopped_at = int(latest.removeprefix("step-"))
    manifest = json.loads(get(f"checkpoints/{latest}/MANIFEST.json"))
    files = {f["path"] for f in manifest["files"]}
    # Both ranks' shards, each uploaded by the rank that wrote it, committed by rank 0.
    assert {"trainer-state-rank-00000.pt", "trainer-state-rank-00001.pt"} <= files
    assert stopped_at < 400

    # The second attempt: fewer steps left to run, resumed from the checkpoint on gs://.
    spec["hyperparameters"]["maxSteps"] = stopped_at + 4
    write_config(tmp_path / "job.json", spec)
    codes, nodes = run(tmp_path / "job.json", tmp_path / "run-2", env=env)
    assert codes == [0, 0], nodes.output()[-4000:]
    assert f"resumed from gs://{gcs_bucket}/out/t/tiny/checkpoints/{latest}/" in nodes.output()

    summary = json.loads(get("summary.json"))
    assert summary["resumedFromStep"] == stopped_at, summary
    assert summary["outputModel"] == f"gs://{gcs_bucket}/out/t/tiny/model/"
    keys = {b.name.removeprefix("out/t/tiny/") for b in gcs_server.client().list_blobs(gcs_bucket)}
    assert {"model/MANIFEST.json", "model/config.json", "model/model.safetensors"} <= keys
    assert json.loads(get("data-report.json"))["streaming"] is True
    # Nothing of the job landed in the S3 bucket but what the test put there.
    s3_keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert all(k.startswith(("models/", "data/")) for k in s3_keys), s3_keys
    # The S3 credentials never reach the outputs or the logs.
    assert s3_server.secret_key not in nodes.output()
    assert s3_server.secret_key.encode() not in get("progress.jsonl")
