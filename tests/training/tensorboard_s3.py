"""`tensorboard --logdir s3://...` against the test S3, as a user runs it (helper).

TensorBoard without TensorFlow reads s3:// through its own TensorFlow stub
(`tensorboard.compat.tensorflow_stub`), which uses boto3: credentials and region from
the usual AWS variables, the endpoint from `S3_ENDPOINT` (TensorBoard's variable) or,
when that is unset, from boto3's own `AWS_ENDPOINT_URL(_S3)`. Its fast Rust loader
handles only local and gs:// folders, so for s3:// it falls back to the Python loader by
itself (`--load_fast=auto`, the default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ftjobs.sdk.local import free_port

TENSORBOARD = str(Path(sys.executable).parent / "tensorboard")


def serve_scalars(
    logdir: str, env: dict[str, str], tag: str, *, timeout: float = 120
) -> tuple[list[list[float]], str]:
    """Start `tensorboard --logdir logdir`, wait until it shows `tag` for the run `.`,
    and return its [wall time, step, value] rows and the server's log."""
    port = free_port()
    log_path = Path(env.get("TMPDIR", "/tmp")) / f"tensorboard-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [TENSORBOARD, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/data/plugin/scalars"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"tensorboard exited {proc.returncode}:\n{log_path.read_text()}"
                )
            tags = _get(f"{base}/tags")
            if tags is not None and tag in (tags.get(".") or {}):
                query = urllib.parse.urlencode({"run": ".", "tag": tag})
                rows = _get(f"{base}/scalars?{query}")
                assert isinstance(rows, list)
                return rows, log_path.read_text()
            time.sleep(1)
        raise AssertionError(f"tensorboard never showed {tag}:\n{log_path.read_text()}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except OSError:
        return None  # not listening yet


def user_env(s3_env: dict[str, str], *, endpoint_variable: str) -> dict[str, str]:
    """This process's environment with the S3 credentials and only one way of naming the
    endpoint (`S3_ENDPOINT` or boto3's `AWS_ENDPOINT_URL`), as the docs tell users."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    env.update({k: v for k, v in s3_env.items() if not k.startswith("AWS_ENDPOINT_URL")})
    env[endpoint_variable] = s3_env["AWS_ENDPOINT_URL"]
    return env
