"""The file:// backend behaves like S3 where correctness depends on it."""

import hashlib
import os
from pathlib import Path

import pytest

from ftjobs.storage import LocalStore, ObjectNotFound, ObjectStore


def test_it_is_an_object_store(store: LocalStore) -> None:
    assert isinstance(store, ObjectStore)


def test_bytes_roundtrip_with_sha256(store: LocalStore) -> None:
    info = store.put_bytes("a/b.txt", b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    assert (info.key, info.size, info.sha256) == ("a/b.txt", 5, digest)
    assert store.get_bytes("a/b.txt") == b"hello"
    assert store.exists("a/b.txt")
    assert not store.exists("a/c.txt")
    assert store.url("a/b.txt") == store.uri + "/a/b.txt"


def test_file_roundtrip_hashes_what_was_read(store: LocalStore, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    info = store.put_file("x/src.bin", src)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    out = tmp_path / "deep" / "out.bin"
    store.get_file("x/src.bin", out)
    assert out.read_bytes() == data


def test_missing_objects_raise_not_found(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound, match=r"file://.*/nope"):
        store.get_bytes("nope")
    with pytest.raises(ObjectNotFound):
        store.get_file("nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_list_is_by_string_prefix_sorted_and_relative(store: LocalStore) -> None:
    for key in ["b/2", "a/1", "step-2/x", "step-10/y", "stepper", "a/0"]:
        store.put_bytes(key, b"k")
    assert store.list() == sorted(["b/2", "a/1", "step-2/x", "step-10/y", "stepper", "a/0"])
    assert store.list("step-") == ["step-10/y", "step-2/x"]
    assert store.list("step") == ["step-10/y", "step-2/x", "stepper"]
    assert store.list("a/") == ["a/0", "a/1"]
    assert store.list("missing/") == []
    assert store.sizes("a/") == {"a/0": 1, "a/1": 1}


def test_partial_writes_are_invisible(store: LocalStore) -> None:
    store.put_bytes("d/real", b"1")
    # What a writer killed mid-write leaves behind.
    (store.root / "d" / ".ftjobs-tmp-abc").write_bytes(b"half")
    assert store.list() == ["d/real"]


def test_delete_prefix_counts_and_prunes_directories(store: LocalStore) -> None:
    for key in ["c/1/a", "c/1/b", "c/2/a", "keep"]:
        store.put_bytes(key, b"x")
    assert store.delete_prefix("c/1/") == 2
    assert store.list() == ["c/2/a", "keep"]
    assert not (store.root / "c" / "1").exists()
    store.delete("c/2/a")
    store.delete("c/2/a")  # deleting a missing object is fine, as on S3
    assert not (store.root / "c").exists()
    assert store.delete_prefix("nothing/") == 0


def test_child_is_rooted_under_the_parent(store: LocalStore) -> None:
    child = store.child("checkpoints")
    child.put_bytes("LATEST", b"step-1")
    assert store.list() == ["checkpoints/LATEST"]
    assert child.list() == ["LATEST"]
    assert child.uri == store.uri + "/checkpoints"
