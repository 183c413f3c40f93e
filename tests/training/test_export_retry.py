"""An export that fails does not lose the run: the final checkpoint is committed before
export, the attempt exits retriable (75), and the next attempt resumes at the last step
and only evaluates and exports (no step is trained twice).

The export failure is real traffic: the job's storage endpoint is the S3 error front of
tests/fixtures/faults.py, which answers 500 InternalError to every write under
`<output>/model/` during the first attempt and forwards everything else to versitygw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.constants import EXIT_RETRIABLE
from tests.fixtures.faults import StatusFaultFront, Toxiproxy
from tests.training.trainer_run import classification_spec, run, write_config

pytestmark = pytest.mark.training


@pytest.mark.timeout(1200)
def test_an_export_failure_is_retried_by_an_attempt_that_only_exports(
    tmp_path: Path,
    s3_server: Any,
    s3_client: Any,
    bucket: str,
    s3_faults: tuple[Toxiproxy, StatusFaultFront],
    tiny_model_dir: Callable[..., Path],
    tiny_data_dir: Callable[..., Path],
) -> None:
    front = s3_faults[1]
    data = tiny_data_dir("sequence-classification", n=160)
    spec = classification_spec(
        tiny_model_dir("sequence-classification"),
        data / "train.jsonl",
        Path("unused"),
        storage={"output": f"s3://{bucket}/out", "endpoint": front.endpoint_url},
        hyperparameters={"maxSteps": 6},
        # No periodic checkpoints: the final one is the only one.
        checkpointing={"everySteps": None, "keep": 2},
    )
    write_config(tmp_path / "job.json", spec)
    env = {**s3_server.env(), "FTJOBS_S3_MAX_ATTEMPTS": "2"}

    def keys() -> set[str]:
        pages = s3_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="out/t/tiny/"
        )
        return {o["Key"].removeprefix("out/t/tiny/") for p in pages for o in p.get("Contents", [])}

    def get(key: str) -> bytes:
        body: bytes = s3_client.get_object(Bucket=bucket, Key=f"out/t/tiny/{key}")["Body"].read()
        return body

    rule = front.fail(500, "InternalError", key_contains="/out/t/tiny/model/")
    codes, first = run(tmp_path / "job.json", tmp_path / "attempt-1", env=env)
    assert EXIT_RETRIABLE in codes and all(c != 0 for c in codes), first.output()[-4000:]
    assert rule.hits > 0, "the export was never attempted"
    assert "model/MANIFEST.json" not in keys() and "summary.json" not in keys()
    assert get("checkpoints/LATEST") == b"step-000000006"
    assert "checkpoints/step-000000006/MANIFEST.json" in keys()
    assert "InternalError" in first.termination_logs[0].read_text()

    front.reset()
    codes, second = run(tmp_path / "job.json", tmp_path / "attempt-2", env=env)
    assert codes == [0, 0], second.output()[-4000:]
    out = second.output()
    assert "resumed at step 6" in out
    assert not re.search(r"step \d+/6 epoch", out), "attempt 2 trained again"
    summary = json.loads(get("summary.json"))
    assert summary["steps"] == 6 and summary["resumedFromStep"] == 6
    assert "model/MANIFEST.json" in keys()
