"""Committed directories: MANIFEST.json written last, verified on download."""

import hashlib
import json
from pathlib import Path

import pytest

from ftjobs.storage import (
    MANIFEST,
    CorruptObject,
    IncompleteCheckpoint,
    LocalStore,
    StorageError,
    download_dir,
    upload_dir,
)
from tests.unit.storage.conftest import RecordingStore, make_dir

FILES = {"a.bin": b"A" * 1000, "sub/b.json": b'{"x": 1}', "sub/deeper/c": b""}


def test_manifest_is_written_after_every_file(recording: RecordingStore, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "src", FILES)
    manifest = upload_dir(recording, src, "model", concurrency=3)
    puts = [key for op, key in recording.events if op == "put"]
    assert puts[-1] == f"model/{MANIFEST}"
    assert sorted(puts[:-1]) == sorted(f"model/{rel}" for rel in FILES)
    assert set(manifest.files) == set(FILES)
    doc = json.loads(recording.get_bytes(f"model/{MANIFEST}"))
    assert doc["total_size"] == sum(len(v) for v in FILES.values())
    for entry in doc["files"]:
        data = FILES[entry["path"]]
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_existing_manifest_is_removed_before_rewriting(
    recording: RecordingStore, tmp_path: Path
) -> None:
    src = make_dir(tmp_path / "src", FILES)
    upload_dir(recording, src, "model")
    recording.events.clear()
    upload_dir(recording, src, "model")
    # The first thing a re-upload does is make the directory stop counting.
    assert recording.events[0] == ("delete", f"model/{MANIFEST}")


def test_reupload_removes_files_the_new_manifest_does_not_list(
    store: LocalStore, tmp_path: Path
) -> None:
    upload_dir(store, make_dir(tmp_path / "v1", {"old.bin": b"1", "same": b"2"}), "m")
    upload_dir(store, make_dir(tmp_path / "v2", {"same": b"3"}), "m")
    assert store.list("m/") == [f"m/{MANIFEST}", "m/same"]


def test_upload_dir_runs_uploads_concurrently(recording: RecordingStore, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "src", {f"f{i}": b"x" * 10 for i in range(8)})
    recording.delay = 0.2
    upload_dir(recording, src, "m", concurrency=4)
    assert recording.max_active == 4
    recording.max_active = 0
    upload_dir(recording, src, "m2", concurrency=1)
    assert recording.max_active == 1


def test_progress_reports_every_file_and_the_total(store: LocalStore, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "src", FILES)
    seen: list[tuple[str, int, int]] = []
    upload_dir(store, src, "m", progress=lambda rel, done, total: seen.append((rel, done, total)))
    total = sum(len(v) for v in FILES.values())
    assert sorted(rel for rel, _, _ in seen) == sorted(FILES)
    assert seen[-1][1:] == (total, total)


def test_a_failed_file_leaves_no_manifest(recording: RecordingStore, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "src", FILES)
    recording.fail_on("sub/b.json")  # injected fault
    with pytest.raises(StorageError, match="injected fault"):
        upload_dir(recording, src, "m")
    assert not recording.exists(f"m/{MANIFEST}")


def test_a_local_manifest_file_is_refused(store: LocalStore, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "src", {MANIFEST: b"{}"})
    with pytest.raises(StorageError, match="reserved"):
        upload_dir(store, src, "m")


def test_download_roundtrip(store: LocalStore, tmp_path: Path) -> None:
    upload_dir(store, make_dir(tmp_path / "src", FILES), "m")
    out = tmp_path / "out"
    manifest = download_dir(store, "m", out)
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == set(FILES)
    for rel, data in FILES.items():
        assert (out / rel).read_bytes() == data
    assert manifest.total_size == sum(len(v) for v in FILES.values())


def _uploaded(store: LocalStore, tmp_path: Path) -> None:
    upload_dir(store, make_dir(tmp_path / "src", FILES), "m")


def _assert_nothing_downloaded(out: Path) -> None:
    assert not out.exists()
    assert not out.with_name(f".{out.name}.partial").exists()


def test_download_without_manifest_is_incomplete(store: LocalStore, tmp_path: Path) -> None:
    _uploaded(store, tmp_path)
    store.delete(f"m/{MANIFEST}")
    out = tmp_path / "out"
    with pytest.raises(IncompleteCheckpoint, match=r"MANIFEST\.json"):
        download_dir(store, "m", out)
    _assert_nothing_downloaded(out)


def test_download_with_a_missing_file_is_incomplete(store: LocalStore, tmp_path: Path) -> None:
    _uploaded(store, tmp_path)
    store.delete("m/sub/b.json")
    out = tmp_path / "out"
    with pytest.raises(IncompleteCheckpoint, match=r"m/sub/b\.json"):
        download_dir(store, "m", out)
    _assert_nothing_downloaded(out)


@pytest.mark.parametrize("damage", [b"B" * 1000, b"A" * 999], ids=["same-size", "truncated"])
def test_download_with_wrong_content_is_corrupt(
    store: LocalStore, tmp_path: Path, damage: bytes
) -> None:
    _uploaded(store, tmp_path)
    store.put_bytes("m/a.bin", damage)
    out = tmp_path / "out"
    with pytest.raises(CorruptObject, match=r"m/a\.bin"):
        download_dir(store, "m", out)
    _assert_nothing_downloaded(out)


def test_a_manifest_cannot_point_outside_its_directory(store: LocalStore, tmp_path: Path) -> None:
    _uploaded(store, tmp_path)
    bad = {"files": [{"path": "../escape", "size": 1, "sha256": "0" * 64}]}
    store.put_bytes(f"m/{MANIFEST}", json.dumps(bad).encode())
    with pytest.raises(CorruptObject, match="unreadable manifest"):
        download_dir(store, "m", tmp_path / "out")


def test_download_refuses_a_non_empty_target(store: LocalStore, tmp_path: Path) -> None:
    _uploaded(store, tmp_path)
    out = make_dir(tmp_path / "out", {"stale": b"x"})
    with pytest.raises(StorageError, match="not empty"):
        download_dir(store, "m", out)
    assert (out / "stale").exists()
