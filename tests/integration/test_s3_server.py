"""The S3 server is real: versitygw (posix backend) driven through boto3."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def test_multipart_upload_list_ranged_get_download_delete(
    s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(64 * MiB)
    digest = hashlib.sha256(data).hexdigest()
    cfg = TransferConfig(
        multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4
    )
    key = "checkpoints/step-100/model.bin"

    s3_client.upload_fileobj(io.BytesIO(data), bucket, key, Config=cfg)
    head = s3_client.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == 64 * MiB
    assert head["ETag"].strip('"').endswith("-8"), head[
        "ETag"
    ]  # 8 parts of 8 MiB: it was multipart

    s3_client.put_object(Bucket=bucket, Key="checkpoints/step-100/done", Body=b"")
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix="checkpoints/")
    assert {o["Key"]: o["Size"] for o in listing["Contents"]} == {
        key: 64 * MiB,
        "checkpoints/step-100/done": 0,
    }
    dirs = s3_client.list_objects_v2(Bucket=bucket, Prefix="checkpoints/", Delimiter="/")
    assert [p["Prefix"] for p in dirs["CommonPrefixes"]] == ["checkpoints/step-100/"]

    start, end = 10 * MiB - 7, 10 * MiB + 4095
    part = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
    assert part["ContentRange"] == f"bytes {start}-{end}/{64 * MiB}"
    assert part["Body"].read() == data[start : end + 1]

    out = tmp_path / "model.bin"
    s3_client.download_file(bucket, key, str(out), Config=cfg)
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    assert h.hexdigest() == digest

    s3_client.delete_object(Bucket=bucket, Key=key)
    s3_client.delete_object(Bucket=bucket, Key="checkpoints/step-100/done")
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_low_level_multipart_and_abort(s3_client: Any, bucket: str) -> None:
    up = s3_client.create_multipart_upload(Bucket=bucket, Key="parts")
    p1 = os.urandom(5 * MiB)
    p2 = b"tail"
    e1 = s3_client.upload_part(
        Bucket=bucket, Key="parts", UploadId=up["UploadId"], PartNumber=1, Body=p1
    )["ETag"]
    e2 = s3_client.upload_part(
        Bucket=bucket, Key="parts", UploadId=up["UploadId"], PartNumber=2, Body=p2
    )["ETag"]
    s3_client.complete_multipart_upload(
        Bucket=bucket,
        Key="parts",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    assert s3_client.get_object(Bucket=bucket, Key="parts")["Body"].read() == p1 + p2

    dangling = s3_client.create_multipart_upload(Bucket=bucket, Key="dangling")
    uploads = s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["dangling"]
    s3_client.abort_multipart_upload(Bucket=bucket, Key="dangling", UploadId=dangling["UploadId"])
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_env_points_a_plain_boto3_client_at_the_server(s3_server: Any, bucket: str) -> None:
    # A child process configured only through the AWS_* variables (as a pod would be).
    code = (
        "import boto3, json, sys\n"
        "c = boto3.client('s3')\n"
        "c.put_object(Bucket=sys.argv[1], Key='from-env', Body=b'ok')\n"
        "print(json.dumps([b['Name'] for b in c.list_buckets()['Buckets']]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_server.env())
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    r = subprocess.run(
        [sys.executable, "-c", code, bucket], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert bucket in json.loads(r.stdout)
    assert set(s3_server.env()) >= {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }


def test_wrong_credentials_are_refused(s3_server: Any, bucket: str) -> None:
    import boto3
    from botocore.exceptions import ClientError

    bad = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key="not-the-secret",
        region_name=s3_server.region,
    )
    with pytest.raises(ClientError) as exc:
        bad.list_objects_v2(Bucket=bucket)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
