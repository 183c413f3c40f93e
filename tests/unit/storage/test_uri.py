"""URI parsing and key rules."""

from pathlib import Path

import pytest

from ftjobs.storage import LocalStore, StorageError, open_store, parse_uri
from ftjobs.storage.uri import check_key


def test_s3_uri_prefix_is_a_directory() -> None:
    parsed = parse_uri("s3://bucket/out/ns/job")
    assert (parsed.scheme, parsed.bucket, parsed.prefix) == ("s3", "bucket", "out/ns/job/")
    assert str(parsed) == "s3://bucket/out/ns/job"
    assert parse_uri("s3://bucket").prefix == ""
    assert parse_uri("s3://bucket/").prefix == ""


def test_file_uri_and_bare_path(tmp_path: Path) -> None:
    assert parse_uri(f"file://{tmp_path}").path == tmp_path
    assert parse_uri(str(tmp_path)).path == tmp_path
    store = open_store(f"file://{tmp_path}/out")
    assert isinstance(store, LocalStore)
    assert store.uri == f"file://{tmp_path}/out"


@pytest.mark.parametrize("uri", ["az://b/x", "s3:///nobucket", "file://host/x", ""])
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(StorageError):
        parse_uri(uri)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a/./b", "a\\b"])
def test_keys_cannot_escape_the_root(key: str) -> None:
    with pytest.raises(StorageError):
        check_key(key)


def test_store_refuses_escaping_keys(store: LocalStore) -> None:
    with pytest.raises(StorageError):
        store.put_bytes("../outside", b"x")
    assert not (store.root.parent / "outside").exists()
