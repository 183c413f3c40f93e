"""The storage adapter against the real S3 server of the test fixtures (no mocked S3).

Uses the session fixture `s3_server` and the per-test `bucket` from tests/fixtures.
The only injected condition is a dead endpoint (a real refused connection), which
stands for a network failure mid-upload.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from ftjobs.storage import (
    LATEST,
    MANIFEST,
    BackgroundUploader,
    CheckpointStore,
    CorruptObject,
    JsonlWriter,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    TransferSettings,
    datasets_storage_options,
    download_dir,
    open_store,
    read_jsonl,
    step_dir,
    upload_dir,
)

MiB = 1024 * 1024


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The server's AWS_* variables, and nothing else boto3 could take credentials from."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env: dict[str, str] = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def raw(s3_server: Any, bucket: str) -> Any:
    """A plain boto3 client, to look at what the adapter wrote (ETags, raw keys)."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    # The fixture hands out a fresh name; create the bucket unless it already did.
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def job(s3_env: dict[str, str], raw: Any, bucket: str) -> ObjectStore:
    # No endpoint argument: it must come from AWS_ENDPOINT_URL in the environment.
    return open_store(f"s3://{bucket}/out/ns/job")


def write_checkpoint(path: Path, step: int, size: int = 4096) -> Path:
    path.mkdir(parents=True)
    (path / "mp_rank_00_model_states.pt").write_bytes(os.urandom(size))
    (path / "zero").mkdir()
    (path / "zero" / "optim_states.pt").write_bytes(os.urandom(size * 2))
    (path / "client_state.json").write_text(json.dumps({"step": step}))
    return path


def test_basic_operations(job: ObjectStore, raw: Any, bucket: str, tmp_path: Path) -> None:
    info = job.put_bytes("a/b.txt", b"hello")
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert raw.get_object(Bucket=bucket, Key="out/ns/job/a/b.txt")["Body"].read() == b"hello"
    assert job.get_bytes("a/b.txt") == b"hello"
    assert job.exists("a/b.txt") and not job.exists("a/c.txt")
    assert job.url("a/b.txt") == f"s3://{bucket}/out/ns/job/a/b.txt"
    job.child("a").put_bytes("c.txt", b"c")
    assert job.list() == ["a/b.txt", "a/c.txt"]
    assert job.sizes("a/") == {"a/b.txt": 5, "a/c.txt": 1}
    with pytest.raises(ObjectNotFound, match=rf"s3://{bucket}/out/ns/job/missing"):
        job.get_bytes("missing")
    with pytest.raises(ObjectNotFound):
        job.get_file("missing", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert job.delete_prefix("a/") == 2
    assert job.list() == []


def test_a_missing_bucket_is_not_found(s3_env: dict[str, str]) -> None:
    store = open_store("s3://ftjobs-no-such-bucket-4f2a/x")
    with pytest.raises(ObjectNotFound) as caught:
        store.get_bytes("k")
    assert caught.value.code == "NoSuchBucket"


def test_listing_and_deleting_past_one_page(job: ObjectStore) -> None:
    keys = [f"many/{i:05d}" for i in range(1001)]  # S3 pages and batches deletes by 1,000
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: job.put_bytes(k, b"x"), keys))
    assert job.list("many/") == keys
    assert job.delete_prefix("many/") == 1001
    assert job.list() == []


def test_multipart_upload_of_a_large_file_runs_parts_concurrently(
    s3_env: dict[str, str], raw: Any, bucket: str, tmp_path: Path
) -> None:
    settings = TransferSettings(multipart_threshold=8 * MiB, chunk_size=8 * MiB, max_concurrency=4)
    store = open_store(f"s3://{bucket}/big", transfer=settings)
    # Observe (not alter) the requests: count UploadPart calls in flight at once.
    inflight, peak, lock = [0], [0], threading.Lock()

    def sent(**_: Any) -> None:
        with lock:
            inflight[0] += 1
            peak[0] = max(peak[0], inflight[0])

    def answered(**_: Any) -> None:
        with lock:
            inflight[0] -= 1

    events = store._s3.meta.events  # type: ignore[attr-defined]
    events.register("before-send.s3.UploadPart", sent)
    events.register("after-call.s3.UploadPart", answered)

    data = os.urandom(48 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    info = store.put_file("model.safetensors", src)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    etag = raw.head_object(Bucket=bucket, Key="big/model.safetensors")["ETag"]
    assert etag.strip('"').endswith("-6"), etag  # 48 MiB in 8 MiB parts
    assert peak[0] >= 2, "parts were not uploaded concurrently"

    out = tmp_path / "back.bin"
    store.get_file("model.safetensors", out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == info.sha256


def test_checkpoint_commit_latest_fetch_retention(job: ObjectStore, tmp_path: Path) -> None:
    cps = CheckpointStore(job.child("checkpoints"), keep=2)
    uris = [cps.commit(s, write_checkpoint(tmp_path / f"c{s}", s)) for s in (100, 200, 300)]
    assert uris[-1] == job.url("checkpoints/step-000000300/")
    assert job.get_bytes(f"checkpoints/{LATEST}") == b"step-000000300"
    assert cps.steps() == {200: True, 300: True}  # retention kept 2
    assert cps.latest() == (300, uris[-1])
    manifest = json.loads(job.get_bytes(f"checkpoints/step-000000300/{MANIFEST}"))
    assert sorted(f["path"] for f in manifest["files"]) == [
        "client_state.json",
        "mp_rank_00_model_states.pt",
        "zero/optim_states.pt",
    ]
    out = cps.fetch(300, tmp_path / "restored")
    for rel in ("client_state.json", "mp_rank_00_model_states.pt", "zero/optim_states.pt"):
        assert (out / rel).read_bytes() == (tmp_path / "c300" / rel).read_bytes()


def test_checkpoint_with_multipart_and_small_files_roundtrips(
    s3_env: dict[str, str], bucket: str, raw: Any, tmp_path: Path
) -> None:
    # Big files take the multipart path one at a time while small ones share the pool.
    settings = TransferSettings(multipart_threshold=5 * MiB, chunk_size=5 * MiB, max_concurrency=3)
    store = open_store(f"s3://{bucket}/job", transfer=settings)
    local = write_checkpoint(tmp_path / "c1", 1)
    (local / "big-a.pt").write_bytes(os.urandom(11 * MiB))
    (local / "big-b.pt").write_bytes(os.urandom(6 * MiB))
    files = {
        p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()
    }
    total = sum(len(data) for data in files.values())

    seen: list[tuple[str, int, int]] = []
    upload_dir(store, local, "model", concurrency=2, progress=lambda *a: seen.append(a))
    assert sorted(rel for rel, _, _ in seen) == sorted(files)
    assert seen[-1][1:] == (total, total)
    etag = raw.head_object(Bucket=bucket, Key="job/model/big-a.pt")["ETag"]
    assert etag.strip('"').endswith("-3"), etag

    manifest = download_dir(store, "model", tmp_path / "restored", concurrency=2)
    assert manifest.total_size == total
    restored = tmp_path / "restored"
    assert {rel: (restored / rel).read_bytes() for rel in files} == files


def test_a_checkpoint_without_manifest_is_skipped(job: ObjectStore, tmp_path: Path) -> None:
    cps = CheckpointStore(job.child("checkpoints"), keep=3)
    cps.commit(1, write_checkpoint(tmp_path / "c1", 1))
    cps.commit(2, write_checkpoint(tmp_path / "c2", 2))
    job.delete(f"checkpoints/{step_dir(2)}/{MANIFEST}")
    assert job.get_bytes(f"checkpoints/{LATEST}") == b"step-000000002"
    assert cps.latest() == (1, cps.uri(1))
    found = cps.fetch_latest(tmp_path / "resume")
    assert found is not None and found[0] == 1
    assert json.loads((tmp_path / "resume" / "client_state.json").read_text()) == {"step": 1}


def test_a_corrupt_object_is_refused_and_resume_falls_back(
    job: ObjectStore, tmp_path: Path
) -> None:
    cps = CheckpointStore(job.child("checkpoints"), keep=3)
    cps.commit(1, write_checkpoint(tmp_path / "c1", 1))
    cps.commit(2, write_checkpoint(tmp_path / "c2", 2))
    key = f"checkpoints/{step_dir(2)}/mp_rank_00_model_states.pt"
    job.put_bytes(key, os.urandom(4096))  # same size, other bytes
    with pytest.raises(CorruptObject, match=key):
        cps.fetch(2, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    found = cps.fetch_latest(tmp_path / "b")
    assert found is not None and found[0] == 1


def test_background_uploader_commits_to_s3(job: ObjectStore, tmp_path: Path) -> None:
    cps = CheckpointStore(job.child("checkpoints"), keep=2)
    done: list[int] = []
    with BackgroundUploader(cps) as uploader:
        for step in (10, 20, 30):
            uploader.submit(
                step, write_checkpoint(tmp_path / f"c{step}", step), lambda s, _: done.append(s)
            )
    assert done == [10, 20, 30]
    assert cps.latest() == (30, cps.uri(30))
    assert not (tmp_path / "c30").exists()


def test_network_failure_reaches_the_training_thread(
    s3_env: dict[str, str], bucket: str, tmp_path: Path
) -> None:
    # A real refused connection (nothing listens on port 9): the stand-in for a network
    # failure mid-upload. Three attempts keep botocore's backoff short.
    store = open_store(
        f"s3://{bucket}/job",
        endpoint="http://127.0.0.1:9",
        transfer=TransferSettings(max_attempts=3),
    )
    attempts: list[str] = []
    store._s3.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3", lambda **kw: attempts.append(kw["request"].url)
    )
    uploader = BackgroundUploader(CheckpointStore(store.child("checkpoints"), keep=1))
    uploader.submit(1, write_checkpoint(tmp_path / "c1", 1))
    with pytest.raises(StorageError, match=rf"s3://{bucket}/job/checkpoints/step-000000001/"):
        uploader.wait(timeout=60)
    assert (tmp_path / "c1").exists()  # kept: nothing was committed
    # The first request (the listing) was retried to the limit, then the upload stopped.
    assert len(attempts) == 3 and len(set(attempts)) == 1, attempts


def _assert_no_secrets(texts: list[str], env: dict[str, str]) -> None:
    secrets = [env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]]
    for text in texts:
        for secret in secrets:
            assert secret not in text


@pytest.mark.parametrize("wrong", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_bad_credentials_fail_without_revealing_them(
    s3_env: dict[str, str],
    bucket: str,
    raw: Any,
    wrong: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="ftjobs")
    monkeypatch.setenv(wrong, "WRONGCREDENTIAL0123456789")
    env = {**s3_env, wrong: "WRONGCREDENTIAL0123456789"}
    store = open_store(f"s3://{bucket}/job")
    with pytest.raises(StorageError) as caught:
        store.put_bytes("x", b"x")
    error = caught.value
    # The code differs by server (SignatureDoesNotMatch, InvalidAccessKeyId, ...).
    assert error.code and not isinstance(error, ObjectNotFound)
    assert f"s3://{bucket}/job/x" in str(error)
    rendered = "".join(traceback.format_exception(error))
    _assert_no_secrets([str(error), repr(error), rendered, caplog.text], env)
    _assert_no_secrets([str(error), rendered], s3_env)


def test_credentials_come_from_the_environment_only(
    s3_env: dict[str, str], bucket: str, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(f"s3://{bucket}/job").put_bytes("ok", b"1")  # works with env credentials
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no AWS credentials in the environment"):
        open_store(f"s3://{bucket}/job").get_bytes("ok")


def test_progress_log_on_s3(job: ObjectStore) -> None:
    writer = JsonlWriter(job, "progress.jsonl")
    writer.append({"step": 1, "loss": 2.0})
    writer.append({"step": 2, "loss": 1.5})
    resumed = JsonlWriter(job, "progress.jsonl")  # a new attempt continues the same file
    resumed.append({"step": 3, "loss": 1.2})
    assert [r["step"] for r in read_jsonl(job, "progress.jsonl")] == [1, 2, 3]


@pytest.fixture
def offline_hf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    yield


def test_datasets_streams_from_s3_with_fresh_options_each_time(
    job: ObjectStore, offline_hf: None
) -> None:
    from datasets import load_dataset

    rows = [{"text": f"example {i}", "label": i % 2} for i in range(20)]
    job.put_bytes("data/train.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    pristine = datasets_storage_options()
    for _ in range(2):  # the second load gets its own dict, whatever the first did to it
        options = datasets_storage_options()
        assert options == pristine and options is not pristine
        stream = load_dataset(
            "json",
            data_files=job.url("data/train.jsonl"),
            split="train",
            streaming=True,
            storage_options=options,
        )
        assert list(stream) == rows
    assert datasets_storage_options() == copy.deepcopy(pristine)
