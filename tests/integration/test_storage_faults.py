"""Real faults between the trainer's storage operations and a real S3 server.

Every (fault, operation) pair of the matrix in docs/failure-handling.md runs here:
transport faults through toxiproxy-server (cut after N bytes, reset mid-transfer, stall
past the read timeout, bandwidth limit, slow close, server down then up) and S3 error
answers through the status front (500 InternalError, 503 ServiceUnavailable, 503
SlowDown), each against the operation as the trainer runs it: a checkpoint commit by
two `ShardedCheckpointStore` ranks, a streaming data read (s3fs under `datasets`), the
base-model download, the export upload, and progress/summary writes.

Each pair asserts: the operation either succeeds with verified bytes (faults the retries
absorb) or fails with a retriable exit code; no MANIFEST for a failed step; LATEST
unchanged; the next attempt resumes from the previous verified checkpoint; and what
resume loads is byte-for-byte a committed checkpoint. `test_the_partial_load_check_can_fail`
is the negative control: a loader that ignores manifests is caught by the same check.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.constants import EXIT_RETRIABLE
from ftjobs.api.status import Progress
from ftjobs.storage import (
    LATEST,
    MANIFEST,
    CheckpointStore,
    ObjectStore,
    TransferSettings,
    datasets_storage_options,
    download_dir,
    open_store,
    read_jsonl,
    step_dir,
    upload_dir,
)
from ftjobs.trainer import checkpoint as checkpoint_module
from ftjobs.trainer.__main__ import classify
from ftjobs.trainer.checkpoint import ShardedCheckpointStore
from ftjobs.trainer.data.loading import DataFile, iter_rows
from ftjobs.trainer.progress import CompositeReporter, StorageReporter
from ftjobs.trainer.runtime import World
from tests.fixtures.faults import StatusFaultFront, Toxiproxy

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
# Short timeouts and few attempts, so a persistent fault ends an operation in seconds;
# 5 MiB parts (S3's minimum) make the 6 MiB checkpoint file a real multipart upload.
FAST = TransferSettings(
    multipart_threshold=5 * MiB,
    chunk_size=5 * MiB,
    max_concurrency=2,
    max_attempts=3,
    connect_timeout_s=1.0,
    read_timeout_s=2.0,
)

# What the matrix run counts; the module's teardown prints the totals that
# docs/failure-handling.md quotes.
TRIED: list[tuple[str, str, str]] = []
PARTIAL_LOADS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def matrix_totals() -> Iterator[None]:
    yield
    loaded = len(PARTIAL_LOADS)
    print(f"\nfault matrix: {len(TRIED)} faults tried, {loaded} partial checkpoints loaded")
    for row in TRIED:
        print("  ", *row)


@dataclass(frozen=True)
class Fault:
    name: str
    absorbed: bool  # True: retries ride it out; False: the operation must fail retriably
    via: str  # "toxiproxy" or "front"
    inject: Callable[[Toxiproxy, StatusFaultFront, str], contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def _toxics(proxy: Toxiproxy, *toxics: tuple[str, str, dict[str, int]]) -> Iterator[None]:
    for kind, stream, attributes in toxics:
        proxy.add_toxic(kind, stream, **attributes)
    yield
    proxy.reset()


@contextlib.contextmanager
def _status(front: StatusFaultFront, status: int, code: str, target: str, times: int | None):
    front.fail(status, code, key_contains=target, times=times)
    yield
    front.reset()


FAULTS = [
    Fault(
        "cut-after-256KiB",
        False,
        "toxiproxy",
        lambda p, f, t: _toxics(
            p,
            ("limit_data", "upstream", {"bytes": 256 * 1024}),
            ("limit_data", "downstream", {"bytes": 256 * 1024}),
        ),
    ),
    Fault(
        "reset-mid-transfer",
        False,
        "toxiproxy",
        lambda p, f, t: _toxics(
            p,
            ("bandwidth", "upstream", {"rate": 256}),
            ("bandwidth", "downstream", {"rate": 256}),
            ("reset_peer", "downstream", {"timeout": 700}),
        ),
    ),
    Fault(
        "stall-past-read-timeout",
        False,
        "toxiproxy",
        lambda p, f, t: _toxics(p, ("timeout", "downstream", {"timeout": 0})),
    ),
    Fault(
        "bandwidth-4MiB/s",
        True,
        "toxiproxy",
        lambda p, f, t: _toxics(
            p,
            ("bandwidth", "upstream", {"rate": 4096}),
            ("bandwidth", "downstream", {"rate": 4096}),
        ),
    ),
    Fault(
        "slow-close-1s",
        True,
        "toxiproxy",
        lambda p, f, t: _toxics(p, ("slow_close", "downstream", {"delay": 1000})),
    ),
    Fault("down-then-up", True, "toxiproxy", lambda p, f, t: p.down_for(0.3)),
    Fault("http-500", False, "front", lambda p, f, t: _status(f, 500, "InternalError", t, None)),
    Fault(
        "http-503", False, "front", lambda p, f, t: _status(f, 503, "ServiceUnavailable", t, None)
    ),
    Fault("slowdown-twice", True, "front", lambda p, f, t: _status(f, 503, "SlowDown", t, 2)),
]


def _bytes(seed: int, size: int) -> bytes:
    return (seed.to_bytes(4, "big") * (size // 4 + 1))[:size]


def _checkpoint_files(step: int, rank: int) -> dict[str, bytes]:
    files = {f"trainer-state-rank-{rank:05d}.pt": _bytes(step * 10 + rank, 2048)}
    if rank == 0:
        files["mp_rank_00_model_states.pt"] = _bytes(step, 6 * MiB)  # multipart
    files[f"zero_pp_rank_{rank}_optim_states.pt"] = _bytes(step * 100 + rank, 300 * 1024)
    return files


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


class Job:
    """One job's output prefix, seen through the clean and the faulty endpoint."""

    def __init__(self, s3_server: Any, bucket: str, faulty_endpoint: str, tmp: Path) -> None:
        self.uri = f"s3://{bucket}/out/ns/job"
        self.bucket = bucket
        self.endpoint = s3_server.endpoint_url
        self.faulty_endpoint = faulty_endpoint
        self.tmp = tmp
        self.clean = open_store(self.uri, endpoint=self.endpoint, transfer=FAST)
        self.faulty = open_store(self.uri, endpoint=faulty_endpoint, transfer=FAST)
        self.committed: dict[int, dict[str, bytes]] = {}

    def commit_two_ranks(self, store: ObjectStore, step: int, token: str) -> list[BaseException]:
        """Both ranks commit `step` concurrently, as the upload threads of two pods do."""
        errors: list[BaseException] = []
        expected: dict[str, bytes] = {}

        def rank(r: int) -> None:
            files = _checkpoint_files(step, r)
            expected.update(files)
            local = _write(self.tmp / f"{token}-rank{r}-step{step}", files)
            world = World(rank=r, size=2, local_rank=r, local_size=2)
            cps = ShardedCheckpointStore(store.child("checkpoints"), 3, world=world, token=token)
            try:
                cps.commit(step, local)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        if not errors:
            self.committed[step] = expected
        return errors

    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(self.clean.child("checkpoints"), 3)

    def latest_pointer(self) -> str:
        return self.clean.get_bytes("checkpoints/" + LATEST).decode()

    def has_manifest(self, step: int) -> bool:
        return self.clean.exists(f"checkpoints/{step_dir(step)}/{MANIFEST}")

    def resume(self, dest: Path) -> int:
        """What the next attempt loads (rank 0's choice, then the verified fetch)."""
        found = self.checkpoints().fetch_latest(dest)
        assert found is not None, "no checkpoint to resume from"
        step, path = found
        check_loaded(path, self.committed, step, "fetch_latest")
        return step


def check_loaded(path: Path, committed: dict[int, dict[str, bytes]], step: int, who: str) -> None:
    """What was loaded must be, byte for byte, a checkpoint that was committed whole."""
    loaded = {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    if loaded != committed.get(step):
        PARTIAL_LOADS.append(f"{who}: step {step}")
        raise AssertionError(f"{who} loaded a partial or foreign checkpoint for step {step}")


@pytest.fixture
def aws_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # rank 0 waits this long for rank 1's part (30 min in training).
    monkeypatch.setattr(checkpoint_module, "PART_TIMEOUT_S", 8.0)
    # `datasets` retries a dropped stream 20 times, 5 s apart, on top of botocore's
    # retries (riding out 100 s of trouble in training); a persistent fault here would
    # take minutes per case.
    import datasets.config

    monkeypatch.setattr(datasets.config, "STREAMING_READ_MAX_RETRIES", 2)
    monkeypatch.setattr(datasets.config, "STREAMING_READ_RETRY_INTERVAL", 0.2)


def _endpoint(fault: Fault, faults: tuple[Toxiproxy, StatusFaultFront]) -> str:
    proxy, front = faults
    return proxy.endpoint_url if fault.via == "toxiproxy" else front.endpoint_url


def _expect_retriable(errors: list[BaseException]) -> None:
    assert errors, "the fault should have failed the operation"
    for error in errors:
        assert classify(error) == EXIT_RETRIABLE, f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- the five operations


def op_checkpoint_commit(job: Job, run: Callable[[], contextlib.AbstractContextManager[Any]]):
    with run():
        return job.commit_two_ranks(job.faulty, 2, "attempt2")


def op_data_read(job: Job, run: Callable[[], contextlib.AbstractContextManager[Any]]):
    uri = f"s3://{job.bucket}/data/train.jsonl"
    options = lambda: datasets_storage_options(job.faulty_endpoint, None, FAST)  # noqa: E731
    rows: list[dict[str, Any]] = []
    with run():
        try:
            rows = [row for _, row in iter_rows(DataFile(uri, uri, "jsonl"), options)]
        except BaseException as e:
            return [e]
    # Never a silently shortened dataset: all rows or an error.
    assert rows == DATA_ROWS, f"read {len(rows)} of {len(DATA_ROWS)} rows without an error"
    return []


def op_model_download(job: Job, run: Callable[[], contextlib.AbstractContextManager[Any]]):
    from ftjobs.trainer.base_model import _download_model

    target = job.tmp / "scratch" / "model"
    store = open_store(
        f"s3://{job.bucket}/models/tiny", endpoint=job.faulty_endpoint, transfer=FAST
    )
    with run():
        try:
            _download_model(store, target)
        except BaseException as e:
            # Nothing that looks like a model is left for the next attempt to load.
            assert not target.exists(), "a half-downloaded model folder was left behind"
            return [e]
    got = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*")}
    assert got == MODEL_FILES
    return []


def op_export_upload(job: Job, run: Callable[[], contextlib.AbstractContextManager[Any]]):
    export = _write(job.tmp / "export", MODEL_FILES)
    with run():
        try:
            upload_dir(job.faulty, export, "model")
        except BaseException as e:
            assert not job.clean.exists(f"model/{MANIFEST}"), "a failed export was committed"
            return [e]
    check_loaded(
        download_dir(job.clean, "model", job.tmp / "export-check") and job.tmp / "export-check",
        {0: MODEL_FILES},
        0,
        "export",
    )
    return []


def op_progress_summary(job: Job, run: Callable[[], contextlib.AbstractContextManager[Any]]):
    reporter = CompositeReporter(StorageReporter(job.faulty))
    summary = {"name": "job", "steps": 2, "padding": "x" * (400 * 1024)}
    with run():
        # A failed progress write is logged and dropped: it must never stop training.
        reporter.report(Progress(step=2, total_steps=10))
        try:
            job.faulty.put_bytes("summary.json", json.dumps(summary).encode())
        except BaseException as e:
            errors = [e]
        else:
            errors = []
    read_jsonl(job.clean, "progress.jsonl")  # always whole JSON lines (or absent)
    if job.clean.exists("summary.json"):
        assert json.loads(job.clean.get_bytes("summary.json")) == summary
    elif not errors:
        raise AssertionError("summary.json missing after a successful write")
    return errors


OPERATIONS = {
    "checkpoint-commit": (op_checkpoint_commit, "mp_rank_00_model_states"),
    "data-read": (op_data_read, "train.jsonl"),
    "model-download": (op_model_download, "model.safetensors"),
    "export-upload": (op_export_upload, "model.safetensors"),
    "progress-summary": (op_progress_summary, "summary.json"),
}

DATA_ROWS = [{"text": f"row {i} " + "y" * 200, "label": ["a", "b"][i % 2]} for i in range(4000)]
MODEL_FILES = {
    "config.json": b'{"model_type": "tiny"}',
    "model.safetensors": _bytes(7, 2 * MiB),
    "tokenizer.json": b'{"version": "1.0"}' * 100,
}


@pytest.mark.parametrize("op_name", list(OPERATIONS))
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_during_storage_operation(
    fault: Fault,
    op_name: str,
    s3_server: Any,
    bucket: str,
    s3_faults: tuple[Toxiproxy, StatusFaultFront],
    aws_env: None,
    tmp_path: Path,
) -> None:
    job = Job(s3_server, bucket, _endpoint(fault, s3_faults), tmp_path)
    # Before the fault: a verified checkpoint (step 1), the data and the base model.
    assert job.commit_two_ranks(job.clean, 1, "attempt1") == []
    if op_name == "data-read":
        body = "".join(json.dumps(r) + "\n" for r in DATA_ROWS).encode()
        open_store(f"s3://{bucket}/data", endpoint=job.endpoint).put_bytes("train.jsonl", body)
    if op_name == "model-download":
        upload_dir(
            open_store(f"s3://{bucket}/models", endpoint=job.endpoint),
            _write(tmp_path / "base", MODEL_FILES),
            "tiny",
        )
        # A model folder has no MANIFEST of its own when people upload it.
        open_store(f"s3://{bucket}/models/tiny", endpoint=job.endpoint).delete(MANIFEST)

    operation, target = OPERATIONS[op_name]
    proxy, front = s3_faults
    errors = operation(job, lambda: fault.inject(proxy, front, target))
    TRIED.append((fault.name, op_name, "failed" if errors else "absorbed"))

    if fault.absorbed:
        assert errors == [], f"{fault.name} should be ridden out by retries: {errors}"
    elif op_name != "progress-summary" or errors:
        _expect_retriable(errors)

    # The checkpoint state: step 2 committed only if the commit succeeded.
    step2 = op_name == "checkpoint-commit" and not errors
    assert job.has_manifest(2) is step2
    assert job.latest_pointer() == step_dir(2 if step2 else 1)

    # The next attempt: resumes from the newest verified checkpoint, then commits again.
    assert job.resume(tmp_path / "resume") == (2 if step2 else 1)
    if not step2:
        ShardedCheckpointStore(
            job.clean.child("checkpoints"),
            3,
            world=World(0, 2, 0, 2),
            token="attempt3",
        ).discard_after(1)
        assert job.commit_two_ranks(job.clean, 2, "attempt3") == []
        assert job.resume(tmp_path / "resume-after") == 2


def test_the_partial_load_check_can_fail(
    s3_server: Any,
    bucket: str,
    s3_faults: tuple[Toxiproxy, StatusFaultFront],
    aws_env: None,
    tmp_path: Path,
) -> None:
    """Negative control: a loader that takes the newest step directory without looking at
    its MANIFEST loads a half-written checkpoint, and `check_loaded` says so."""
    proxy, _ = s3_faults
    job = Job(s3_server, bucket, proxy.endpoint_url, tmp_path)
    assert job.commit_two_ranks(job.clean, 1, "attempt1") == []
    proxy.add_toxic("limit_data", "upstream", bytes=256 * 1024)
    _expect_retriable(job.commit_two_ranks(job.faulty, 2, "attempt2"))
    proxy.reset()
    assert not job.has_manifest(2)
    # Half of step 2 is in the bucket (the small files went through before the cut).
    half = job.clean.list(f"checkpoints/{step_dir(2)}/")
    assert half, "the fault should have left part of step 2 behind"

    def naive_newest(dest: Path) -> int:
        steps = sorted(
            {
                int(k.split("/")[1].removeprefix("step-"))
                for k in job.clean.list("checkpoints/step-")
            }
        )
        newest = steps[-1]
        for key in job.clean.list(f"checkpoints/{step_dir(newest)}/"):
            if "/_parts/" not in key:
                job.clean.get_file(key, dest / key.split("/", 2)[2])
        return newest

    before = len(PARTIAL_LOADS)
    dest = tmp_path / "naive"
    newest = naive_newest(dest)
    assert newest == 2
    with pytest.raises(AssertionError, match="partial or foreign"):
        check_loaded(dest, job.committed, newest, "naive loader")
    assert len(PARTIAL_LOADS) == before + 1
    del PARTIAL_LOADS[before:]  # the control's catch is not a product failure
    assert job.resume(tmp_path / "resume") == 1
