"""Checkpoint commit order, LATEST, retention, and skipping partial checkpoints."""

from pathlib import Path

import pytest

from ftjobs.storage import (
    LATEST,
    MANIFEST,
    CheckpointStore,
    CorruptObject,
    LocalStore,
    step_dir,
)
from tests.unit.storage.conftest import RecordingStore, checkpoint_files, make_dir


def commit(cps: CheckpointStore, tmp_path: Path, step: int) -> str:
    return cps.commit(step, make_dir(tmp_path / f"local-{step}", checkpoint_files(step)))


def test_commit_order_files_manifest_latest(recording: RecordingStore, tmp_path: Path) -> None:
    cps = CheckpointStore(recording, keep=2)
    uri = commit(cps, tmp_path, 100)
    assert uri == recording.url("step-000000100/")
    puts = [key for op, key in recording.events if op == "put"]
    assert puts[-2:] == [f"step-000000100/{MANIFEST}", LATEST]
    assert recording.get_bytes(LATEST) == b"step-000000100"
    assert cps.latest() == (100, uri)


def test_retention_keeps_the_newest_complete_ones(store: LocalStore, tmp_path: Path) -> None:
    cps = CheckpointStore(store, keep=2)
    for step in (10, 20, 30, 40):
        commit(cps, tmp_path, step)
    assert cps.steps() == {30: True, 40: True}
    assert store.get_bytes(LATEST) == b"step-000000040"


def test_retention_keep_one(store: LocalStore, tmp_path: Path) -> None:
    cps = CheckpointStore(store, keep=1)
    for step in (1, 2):
        commit(cps, tmp_path, step)
    assert cps.steps() == {2: True}
    with pytest.raises(ValueError):
        CheckpointStore(store, keep=0)


def test_latest_skips_a_step_without_manifest_even_if_latest_names_it(
    store: LocalStore, tmp_path: Path
) -> None:
    cps = CheckpointStore(store, keep=3)
    commit(cps, tmp_path, 1)
    commit(cps, tmp_path, 2)
    store.delete(f"{step_dir(2)}/{MANIFEST}")
    assert store.get_bytes(LATEST) == b"step-000000002"
    assert cps.latest() == (1, cps.uri(1))


def test_latest_skips_a_step_with_a_missing_or_resized_file(
    store: LocalStore, tmp_path: Path
) -> None:
    cps = CheckpointStore(store, keep=4)
    for step in (1, 2, 3):
        commit(cps, tmp_path, step)
    store.delete(f"{step_dir(3)}/client_state.json")
    store.put_bytes(f"{step_dir(2)}/client_state.json", b"{}")  # different size
    assert cps.latest() == (1, cps.uri(1))


def test_a_crash_before_latest_still_finds_the_committed_step(
    store: LocalStore, tmp_path: Path
) -> None:
    cps = CheckpointStore(store, keep=3)
    commit(cps, tmp_path, 1)
    commit(cps, tmp_path, 2)
    store.put_bytes(LATEST, b"step-000000001")  # as if the process died before LATEST
    assert cps.latest() == (2, cps.uri(2))


def test_no_checkpoints(store: LocalStore, tmp_path: Path) -> None:
    cps = CheckpointStore(store, keep=1)
    assert cps.latest() is None
    assert cps.fetch_latest(tmp_path / "out") is None


def test_fetch_verifies_and_restores_the_files(store: LocalStore, tmp_path: Path) -> None:
    cps = CheckpointStore(store, keep=2)
    files = checkpoint_files(7)
    cps.commit(7, make_dir(tmp_path / "local", files))
    out = cps.fetch(7, tmp_path / "restored")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


def test_fetch_refuses_sha_mismatch_and_fetch_latest_falls_back(
    store: LocalStore, tmp_path: Path
) -> None:
    cps = CheckpointStore(store, keep=3)
    commit(cps, tmp_path, 1)
    commit(cps, tmp_path, 2)
    key = f"{step_dir(2)}/mp_rank_00_model_states.pt"
    data = bytearray(store.get_bytes(key))
    data[0] ^= 0xFF  # same size, different content: only the sha256 can tell
    store.put_bytes(key, bytes(data))
    assert cps.latest() == (2, cps.uri(2))  # sizes are all right
    with pytest.raises(CorruptObject):
        cps.fetch(2, tmp_path / "a")
    found = cps.fetch_latest(tmp_path / "b")
    assert found == (1, tmp_path / "b")
    assert (tmp_path / "b" / "client_state.json").read_bytes() == b'{"step": 1}'


def test_commit_cleans_partial_and_abandoned_steps(store: LocalStore, tmp_path: Path) -> None:
    cps = CheckpointStore(store, keep=3)
    commit(cps, tmp_path, 1)
    commit(cps, tmp_path, 2)
    # step 3: an upload a crash cut short (no manifest); step 5: damaged, skipped at resume.
    store.put_bytes(f"{step_dir(3)}/mp_rank_00_model_states.pt", b"half")
    commit(cps, tmp_path, 5)
    store.put_bytes(f"{step_dir(5)}/client_state.json", b"")
    assert cps.latest() == (2, cps.uri(2))
    # The resumed run (from step 2) commits step 4: 3 and 5 are gone, 1, 2, 4 kept.
    commit(cps, tmp_path, 4)
    assert cps.steps() == {1: True, 2: True, 4: True}
    assert cps.latest() == (4, cps.uri(4))
