"""Background uploads: training does not wait, failures reach the training thread."""

import threading
import time
from pathlib import Path

import pytest

from ftjobs.storage import LATEST, MANIFEST, BackgroundUploader, CheckpointStore, StorageError
from tests.unit.storage.conftest import RecordingStore, checkpoint_files, make_dir


def local(tmp_path: Path, step: int) -> Path:
    return make_dir(tmp_path / f"local-{step}", checkpoint_files(step))


def test_submit_returns_while_the_upload_is_in_flight(
    recording: RecordingStore, tmp_path: Path
) -> None:
    recording.gate = threading.Event()  # holds every upload until the test opens it
    done: list[tuple[int, str]] = []
    uploader = BackgroundUploader(CheckpointStore(recording, keep=2))
    start = time.monotonic()
    uploader.submit(1, local(tmp_path, 1), on_done=lambda s, u: done.append((s, u)))
    assert time.monotonic() - start < 1.0
    assert uploader.pending == 1
    with pytest.raises(TimeoutError):
        uploader.wait(timeout=0.2)
    assert done == []
    recording.gate.set()
    uploader.close(timeout=10)
    assert done == [(1, recording.url("step-000000001/"))]


def test_commits_in_order_and_deletes_local_dirs(recording: RecordingStore, tmp_path: Path) -> None:
    cps = CheckpointStore(recording, keep=5)
    dirs = [local(tmp_path, step) for step in (1, 2, 3)]
    done: list[int] = []
    with BackgroundUploader(cps, max_pending=3) as uploader:
        for step, d in zip((1, 2, 3), dirs, strict=True):
            uploader.submit(step, d, on_done=lambda s, _u: done.append(s))
    assert done == [1, 2, 3]
    assert not any(d.exists() for d in dirs)
    assert cps.latest() == (3, cps.uri(3))


def test_a_failed_upload_is_raised_in_the_caller(recording: RecordingStore, tmp_path: Path) -> None:
    cps = CheckpointStore(recording, keep=5)
    # Injected fault: the network fails on one file of step 2, after others went through.
    recording.fail_on("step-000000002/client_state")
    uploader = BackgroundUploader(cps, max_pending=3)
    uploader.submit(1, local(tmp_path, 1))
    uploader.submit(2, d2 := local(tmp_path, 2))
    uploader.submit(3, d3 := local(tmp_path, 3))
    with pytest.raises(StorageError, match="injected fault"):
        uploader.wait(timeout=10)
    with pytest.raises(StorageError, match="injected fault"):
        uploader.raise_if_failed()
    with pytest.raises(StorageError, match="injected fault"):
        uploader.submit(4, local(tmp_path, 4))
    # Nothing after the failure was committed: step 2 has files but no MANIFEST, LATEST
    # still names step 1, step 3 was never touched; the failed and skipped dirs are kept.
    written = [key for op, key in recording.events if op == "put"]
    assert any(k.startswith("step-000000002/") for k in written), "the fault came too early"
    assert f"step-000000002/{MANIFEST}" not in written
    assert not recording.exists(f"step-000000002/{MANIFEST}")
    assert not any(k.startswith("step-000000003/") for k in written)
    assert recording.get_bytes(LATEST) == b"step-000000001"
    assert cps.steps() == {1: True, 2: False}
    assert cps.latest() == (1, cps.uri(1))
    assert d2.exists() and d3.exists()


def test_a_failing_callback_is_an_upload_failure(store_root: Path, tmp_path: Path) -> None:
    def boom(step: int, uri: str) -> None:
        raise RuntimeError("callback broke")

    uploader = BackgroundUploader(CheckpointStore(RecordingStore(store_root), keep=1))
    uploader.submit(1, local(tmp_path, 1), on_done=boom)
    with pytest.raises(RuntimeError, match="callback broke"):
        uploader.close(timeout=10)


def test_max_pending_applies_backpressure(recording: RecordingStore, tmp_path: Path) -> None:
    recording.gate = threading.Event()
    uploader = BackgroundUploader(CheckpointStore(recording, keep=5), max_pending=1)
    uploader.submit(1, local(tmp_path, 1))  # taken by the worker, blocked in upload
    time.sleep(0.2)
    uploader.submit(2, local(tmp_path, 2))  # fills the queue
    third = threading.Thread(target=uploader.submit, args=(3, local(tmp_path, 3)))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "submit should block while the queue is full"
    recording.gate.set()
    third.join(10)
    uploader.close(timeout=10)
    assert not third.is_alive()


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "bucket"
