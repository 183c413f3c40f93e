"""Write access to the output prefix, probed against the real versitygw.

The read-only credentials are a real versitygw IAM account (internal IAM, role "user")
that a bucket policy allows to read and list the bucket, not to write: the refusal comes
from the server, as it would from AWS. The network failure is a real closed port.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from typing import Any

import pytest

from ftjobs.api.job import FineTuneJob
from ftjobs.sdk.preflight import preflight
from ftjobs.storage import StorageError, open_store
from ftjobs.storage.probe import PROBE_NAME, probe_write
from tests.fixtures.controlplane import ensure_binaries, free_port


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Nothing but the variables a test sets can give boto3 credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def read_only(s3_server: Any, bucket: str) -> tuple[str, str]:
    """(access key, secret) of an account that may read and list `bucket`, not write it."""
    access = f"ro-{secrets.token_hex(4)}"
    secret = secrets.token_hex(16)
    versitygw = ensure_binaries(("versitygw",))["versitygw"]
    subprocess.run(
        [
            str(versitygw), "admin", "--access", s3_server.access_key,
            "--secret", s3_server.secret_key, "--endpoint-url", s3_server.endpoint_url,
            "create-user", "--access", access, "--secret", secret, "--role", "user",
        ],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [access]},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    s3_server.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return access, secret


def _use(env: pytest.MonkeyPatch, s3_server: Any, access: str, secret: str) -> None:
    env.setenv("AWS_ACCESS_KEY_ID", access)
    env.setenv("AWS_SECRET_ACCESS_KEY", secret)
    env.setenv("AWS_DEFAULT_REGION", s3_server.region)


def test_read_only_credentials_are_refused_permanently_naming_the_uri(
    s3_server: Any, bucket: str, read_only: tuple[str, str], aws_env: pytest.MonkeyPatch
) -> None:
    access, secret = read_only
    _use(aws_env, s3_server, access, secret)
    s3_server.client().put_object(Bucket=bucket, Key="out/ns/job/readable", Body=b"x")
    store = open_store(f"s3://{bucket}/out/ns/job", endpoint=s3_server.endpoint_url)
    assert store.get_bytes("readable") == b"x"  # the account can read: only writes fail
    with pytest.raises(StorageError) as caught:
        probe_write(store)
    error = caught.value
    assert not error.retriable
    assert error.code == "AccessDenied"
    assert str(error).startswith(f"no write access to the output s3://{bucket}/out/ns/job: ")
    assert secret not in str(error) and access not in str(error)


def test_the_owners_credentials_pass_and_leave_nothing(
    s3_server: Any, bucket: str, aws_env: pytest.MonkeyPatch
) -> None:
    # Negative control: the same probe with credentials that may write.
    _use(aws_env, s3_server, s3_server.access_key, s3_server.secret_key)
    store = open_store(f"s3://{bucket}/out/ns/job", endpoint=s3_server.endpoint_url)
    probe_write(store)
    assert not store.exists(PROBE_NAME)
    assert store.list() == []


def test_an_unreachable_endpoint_is_retriable(
    s3_server: Any, bucket: str, aws_env: pytest.MonkeyPatch
) -> None:
    _use(aws_env, s3_server, s3_server.access_key, s3_server.secret_key)
    # botocore's retries (10 attempts with backoff by default) would take a minute here.
    aws_env.setenv("FTJOBS_S3_MAX_ATTEMPTS", "2")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = open_store(f"s3://{bucket}/out/ns/job", endpoint=closed)
    with pytest.raises(StorageError) as caught:
        probe_write(store)
    assert caught.value.retriable
    assert f"s3://{bucket}/out/ns/job" in str(caught.value)


def _job(bucket: str, endpoint: str, **resources: Any) -> FineTuneJob:
    return FineTuneJob.model_validate(
        {
            "apiVersion": "ftjobs.dev/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "probe", "namespace": "ns"},
            "spec": {
                "task": "causal-lm",
                "model": {"uri": f"s3://{bucket}/models/tiny"},
                "dataset": {"train": f"s3://{bucket}/data/train.jsonl"},
                "hyperparameters": {"maxSteps": 10, "microBatchSize": 1},
                "storage": {"output": f"s3://{bucket}/out", "endpoint": endpoint},
                "resources": resources,
            },
        }
    )


def test_preflight_checks_write_access_and_scratch_space(
    s3_server: Any, bucket: str, read_only: tuple[str, str], aws_env: pytest.MonkeyPatch
) -> None:
    _use(aws_env, s3_server, *read_only)
    job = _job(bucket, s3_server.endpoint_url, scratchSize="10Gi")
    checks = {c.name: c for c in preflight(job, None, params=7_000_000_000).checks}
    output = checks["storage output"]
    assert output.status == "fail"
    assert f"no write access to the output s3://{bucket}/out/ns/probe" in output.message
    assert "AccessDenied" in output.message and read_only[1] not in output.message
    # 7e9 weights x 4 bytes (fp32) ~ 26 GiB to export, 26 GiB downloaded: 10Gi is too small.
    scratch = checks["scratch"]
    assert scratch.status == "fail", scratch
    assert "spec.resources.scratchSize 10Gi <" in scratch.message
    assert "set it to at least" in scratch.message

    _use(aws_env, s3_server, s3_server.access_key, s3_server.secret_key)
    roomy = _job(bucket, s3_server.endpoint_url, scratchSize="200Gi")
    checks = {c.name: c for c in preflight(roomy, None, params=7_000_000_000).checks}
    assert checks["storage output"].status == "ok", checks["storage output"]
    assert checks["scratch"].status == "ok", checks["scratch"]
