"""Helpers for the storage unit tests: a real file:// store, and a wrapper around it that
records the order of writes and can inject faults or delays (named as such in tests)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ftjobs.storage import LocalStore, ObjectInfo, StorageError, open_store


class RecordingStore(LocalStore):
    """A LocalStore that logs every write and delete, and can be told to fail or stall.

    `fail_on(key_part)`: an injected fault, as a network error mid-upload would raise.
    `gate`: when set, put_file blocks until the event is set (an upload in flight).
    `delay`: seconds each put_file takes (to observe concurrency).
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.events: list[tuple[str, str]] = []
        self.fail_keys: set[str] = set()
        self.gate: threading.Event | None = None
        self.delay = 0.0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def fail_on(self, key_part: str) -> None:
        self.fail_keys.add(key_part)

    def _maybe_fail(self, key: str) -> None:
        if any(part in key for part in self.fail_keys):
            raise StorageError(f"injected fault: connection reset uploading {self.url(key)}")

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        self._maybe_fail(key)
        info = super().put_bytes(key, data)
        with self._lock:
            self.events.append(("put", key))
        return info

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.gate is not None:
                assert self.gate.wait(10), "test gate never opened"
            time.sleep(self.delay)
            self._maybe_fail(key)
            info = super().put_file(key, path)
        finally:
            with self._lock:
                self.active -= 1
        with self._lock:
            self.events.append(("put", key))
        return info

    def delete(self, key: str) -> None:
        super().delete(key)
        with self._lock:
            self.events.append(("delete", key))

    def child(self, prefix: str) -> RecordingStore:
        raise NotImplementedError("tests root a RecordingStore where they need it")


def make_dir(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def checkpoint_files(step: int) -> dict[str, bytes]:
    """A small stand-in for a DeepSpeed checkpoint directory."""
    return {
        "mp_rank_00_model_states.pt": os.urandom(3000) + str(step).encode(),
        "zero_pp_rank_0_mp_rank_00_optim_states.pt": os.urandom(5000),
        "client_state.json": f'{{"step": {step}}}'.encode(),
    }


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = open_store(f"file://{tmp_path / 'bucket'}")
    assert isinstance(s, LocalStore)
    return s


@pytest.fixture
def recording(tmp_path: Path) -> RecordingStore:
    return RecordingStore(tmp_path / "bucket")
