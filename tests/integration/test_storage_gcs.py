"""The gs:// backend against a real GCS JSON API server (fake-gcs-server, no mocks).

Uses the session fixture `gcs_server` and the per-test `gcs_bucket`. The server takes
requests anonymously (the clients' emulator mode), so the credentials path is proven
with a real service-account key whose token endpoint refuses (a real refused
connection on 127.0.0.1): the failure is classified and names no part of the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from pathlib import Path

import pytest

from ftjobs.sdk.preflight import preflight
from ftjobs.storage import (
    LATEST,
    MANIFEST,
    CheckpointStore,
    CorruptObject,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    TransferSettings,
    backend,
    download_dir,
    open_store,
    options_for,
    step_dir,
    upload_dir,
)
from tests.builders import make_job
from tests.fixtures.controlplane import free_port
from tests.fixtures.gcs import GcsServer
from tests.integration.test_storage_s3 import write_checkpoint

MiB = 1024 * 1024


@pytest.fixture
def gcs_env(gcs_server: GcsServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """STORAGE_EMULATOR_HOST for the server, and no key file from the caller's machine."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    env = gcs_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def job(gcs_env: dict[str, str], gcs_bucket: str) -> ObjectStore:
    # No endpoint argument: it comes from STORAGE_EMULATOR_HOST.
    return open_store(f"gs://{gcs_bucket}/out/ns/job")


def test_basic_operations(
    job: ObjectStore, gcs_server: GcsServer, gcs_bucket: str, tmp_path: Path
) -> None:
    info = job.put_bytes("a/b.txt", b"hello")
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest()
    raw = gcs_server.client().bucket(gcs_bucket).blob("out/ns/job/a/b.txt")
    assert raw.download_as_bytes() == b"hello"
    assert job.get_bytes("a/b.txt") == b"hello"
    assert job.exists("a/b.txt") and not job.exists("a/c.txt")
    assert job.url("a/b.txt") == f"gs://{gcs_bucket}/out/ns/job/a/b.txt"
    job.child("a").put_bytes("c.txt", b"c")
    assert job.list() == ["a/b.txt", "a/c.txt"]
    assert job.sizes("a/") == {"a/b.txt": 5, "a/c.txt": 1}
    with pytest.raises(ObjectNotFound, match=rf"gs://{gcs_bucket}/out/ns/job/missing"):
        job.get_bytes("missing")
    with pytest.raises(ObjectNotFound):
        job.get_file("missing", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    job.delete("never-written")  # deleting a missing object is no error
    assert job.delete_prefix("a/") == 2
    assert job.list() == []


def test_a_missing_bucket_is_not_found(gcs_env: dict[str, str]) -> None:
    store = open_store("gs://ftjobs-no-such-bucket-4f2a/x")
    with pytest.raises(ObjectNotFound) as caught:
        store.list()
    assert caught.value.failure == "no-such-bucket"
    assert not caught.value.retriable


def test_the_spec_endpoint_wins_over_the_environment(
    gcs_server: GcsServer, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ftjobs.api.spec import Storage

    # The environment points nowhere; spec.storage.gcs.endpoint is the server.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    storage = Storage.model_validate(
        {"output": f"gs://{gcs_bucket}/o", "gcs": {"endpoint": gcs_server.endpoint_url}}
    )
    store = open_store(f"gs://{gcs_bucket}/o", storage=storage)
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"


def test_checkpoint_commit_latest_fetch_retention(job: ObjectStore, tmp_path: Path) -> None:
    cps = CheckpointStore(job.child("checkpoints"), keep=2)
    uris = [cps.commit(s, write_checkpoint(tmp_path / f"c{s}", s)) for s in (100, 200, 300)]
    assert uris[-1] == job.url("checkpoints/step-000000300/")
    assert job.get_bytes(f"checkpoints/{LATEST}") == b"step-000000300"
    assert cps.steps() == {200: True, 300: True}  # retention kept 2
    manifest = json.loads(job.get_bytes(f"checkpoints/step-000000300/{MANIFEST}"))
    assert sorted(f["path"] for f in manifest["files"]) == [
        "client_state.json",
        "mp_rank_00_model_states.pt",
        "zero/optim_states.pt",
    ]
    out = cps.fetch(300, tmp_path / "restored")
    for rel in ("client_state.json", "mp_rank_00_model_states.pt", "zero/optim_states.pt"):
        assert (out / rel).read_bytes() == (tmp_path / "c300" / rel).read_bytes()


def test_resume_skips_uncommitted_and_corrupt_checkpoints(job: ObjectStore, tmp_path: Path) -> None:
    cps = CheckpointStore(job.child("checkpoints"), keep=5)
    for step in (1, 2, 3):
        cps.commit(step, write_checkpoint(tmp_path / f"c{step}", step))
    job.delete(f"checkpoints/{step_dir(3)}/{MANIFEST}")  # 3 never committed
    key = f"checkpoints/{step_dir(2)}/mp_rank_00_model_states.pt"
    job.put_bytes(key, os.urandom(4096))  # 2: same size, other bytes
    with pytest.raises(CorruptObject, match=key):
        cps.fetch(2, tmp_path / "a")
    found = cps.fetch_latest(tmp_path / "b")
    assert found is not None and found[0] == 1
    assert json.loads((tmp_path / "b" / "client_state.json").read_text()) == {"step": 1}


def test_big_files_take_resumable_uploads_and_roundtrip(
    gcs_env: dict[str, str], gcs_bucket: str, tmp_path: Path
) -> None:
    # Files from the threshold up go in chunk_size parts (GCS resumable uploads).
    settings = TransferSettings(multipart_threshold=1 * MiB, chunk_size=1 * MiB)
    store = open_store(f"gs://{gcs_bucket}/job", transfer=settings)
    local = write_checkpoint(tmp_path / "c1", 1)
    (local / "big.pt").write_bytes(os.urandom(3 * MiB + 17))
    files = {
        p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()
    }
    upload_dir(store, local, "model", concurrency=2)
    manifest = download_dir(store, "model", tmp_path / "restored", concurrency=2)
    assert manifest.total_size == sum(len(b) for b in files.values())
    assert {rel: (tmp_path / "restored" / rel).read_bytes() for rel in files} == files


def test_datasets_streams_from_gs(
    job: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ftjobs.trainer.data.loading import iter_rows, resolve_files

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    rows = [{"text": f"example {i}", "label": i % 2} for i in range(20)]
    job.put_bytes("data/part-0.jsonl", "".join(json.dumps(r) + "\n" for r in rows[:12]).encode())
    job.put_bytes("data/part-1.jsonl", "".join(json.dumps(r) + "\n" for r in rows[12:]).encode())
    options = options_for(None)
    files = resolve_files(job.url("data"), "auto", options)
    assert [f.uri for f in files] == [job.url("data/part-0.jsonl"), job.url("data/part-1.jsonl")]
    read = [row for f in files for _, row in iter_rows(f, options)]
    assert read == rows


def test_a_missing_data_file_on_gs_is_named(job: ObjectStore) -> None:
    from ftjobs.trainer.data.errors import DataError
    from ftjobs.trainer.data.loading import resolve_files

    with pytest.raises(DataError, match=rf"{job.url('nope.jsonl')}: no such file"):
        resolve_files(job.url("nope.jsonl"), "auto", options_for(None))


def _service_account_key(token_uri: str) -> dict[str, str]:
    """A well-formed service-account key (a fresh RSA key) whose token endpoint is ours."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "ftjobs-test",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "trainer@ftjobs-test.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "token_uri": token_uri,
    }


def test_a_refused_service_account_fails_without_revealing_the_key(
    gcs_server: GcsServer,
    gcs_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    sa = _service_account_key(f"http://127.0.0.1:{free_port()}/token")  # nothing listens
    gs = backend("gs")
    # As preflight hands a Secret's key to the client: a private temporary file.
    with gs.credentials({"service-account.json": json.dumps(sa)}):
        key_file = Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
        assert key_file.stat().st_mode & 0o077 == 0
        # One attempt, a short deadline: a refused token endpoint is a network failure,
        # which the client would otherwise retry with backoff for minutes.
        quick = TransferSettings(max_attempts=1, read_timeout_s=3, connect_timeout_s=3)
        store = open_store(
            f"gs://{gcs_bucket}/job", endpoint=gcs_server.endpoint_url, transfer=quick
        )
        with pytest.raises(StorageError) as caught:
            store.put_bytes("x", b"x")
    assert not key_file.exists()
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ
    error = caught.value
    assert f"gs://{gcs_bucket}/job/x" in str(error)
    assert error.failure in ("unknown-access-key", "network")
    rendered = "".join(traceback.format_exception(error))
    key_body = sa["private_key"].splitlines()[1]
    for text in (str(error), repr(error), rendered, caplog.text):
        assert key_body not in text
        assert "PRIVATE KEY" not in text
    # Negative control: the check would see the key had it leaked.
    assert key_body in sa["private_key"]


def test_preflight_checks_gs_reads_and_writes(
    gcs_env: dict[str, str], job: ObjectStore, gcs_bucket: str, gcs_server: GcsServer
) -> None:
    job.put_bytes("models/tiny/config.json", json.dumps({"num_parameters": 1000}).encode())
    job.put_bytes("data/train.jsonl", b'{"text": "a", "label": "x"}\n')
    built = (
        make_job("pre")
        .namespace("ns")
        .model(job.url("models/tiny"))
        .train(job.url("data/train.jsonl"))
        .validation(job.url("data/missing.jsonl"))
        .spec(
            "storage",
            {"output": f"gs://{gcs_bucket}/out", "gcs": {"endpoint": gcs_server.endpoint_url}},
        )
        .build()
    )
    report = preflight(built, None, params=1_000_000)
    checks = {c.name: (c.status, c.message) for c in report.checks}
    assert checks["storage model"][0] == "ok", checks
    assert checks["storage dataset.train"][0] == "ok", checks
    assert checks["storage dataset.validation"][0] == "fail", checks
    assert "data/missing.jsonl: nothing there" in checks["storage dataset.validation"][1]
    assert checks["storage output"] == (
        "ok",
        f"gs://{gcs_bucket}/out accepts writes (your credentials (environment))",
    )
    # The write probe was removed again.
    assert open_store(f"gs://{gcs_bucket}/out/ns/pre").list() == []
