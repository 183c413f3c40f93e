"""The storage-backend registry: one list of schemes, the same on the storage side and
the pod (render) side, and scheme-specific options and errors only from a backend."""

from typing import Any

import pytest

from ftjobs.api.spec import Storage
from ftjobs.render import schemes as render_schemes
from ftjobs.storage import (
    SCHEMES,
    StorageError,
    backend,
    failure_from,
    fsspec_options,
    is_remote,
    open_store,
    options_for,
    parse_uri,
    scheme_of,
)
from ftjobs.storage.backends import call_options


def test_storage_and_render_list_the_same_schemes() -> None:
    assert set(SCHEMES) == set(render_schemes.SCHEMES)
    for scheme in SCHEMES:
        assert backend(scheme).scheme == scheme
        assert render_schemes.DESCRIPTORS[scheme].scheme == scheme


def test_a_scheme_missing_from_one_registry_is_caught() -> None:
    # Negative control for the test above: a registry with one scheme less differs.
    assert set(SCHEMES) != set(render_schemes.SCHEMES) - {"s3"}


def test_unknown_scheme_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(StorageError, match=r"unsupported storage scheme .*s3://.*file://"):
        parse_uri("ftp://host/x")
    with pytest.raises(StorageError, match="unsupported storage scheme 'ftp'"):
        backend("ftp")


def test_schemes_of_uris() -> None:
    assert scheme_of("/tmp/x") == "file"
    assert scheme_of("s3://b/k") == "s3"
    assert is_remote("s3://b/k")
    assert not is_remote("file:///tmp/x")
    assert not is_remote("hf://datasets/org/name")
    assert not is_remote("/tmp/x")


def test_options_follow_the_uri_scheme() -> None:
    storage = Storage(output="s3://out/x", endpoint="http://s3.example:9000", region="eu-west-1")
    options = fsspec_options("s3://data/train.jsonl", storage=storage)
    assert options["client_kwargs"]["endpoint_url"] == "http://s3.example:9000"
    assert options["client_kwargs"]["region_name"] == "eu-west-1"
    assert fsspec_options("file:///data/train.jsonl", storage=storage) == {}
    assert fsspec_options("hf://datasets/org/name", storage=storage) == {}
    # A new dict each call: datasets mutates what it gets.
    per_uri = options_for(storage)
    assert per_uri("s3://a/b") is not per_uri("s3://a/b")


def test_a_parameterless_options_callable_still_works() -> None:
    given: dict[str, Any] = {"anon": True}
    copy = call_options(lambda: given, "s3://b/k")
    assert copy == given and copy is not given
    assert call_options(lambda uri: {"uri": uri}, "s3://b/k") == {"uri": "s3://b/k"}


def test_open_store_takes_each_backend_its_own_settings() -> None:
    storage = Storage(output="s3://out/x", endpoint="http://s3.example:9000")
    store: Any = open_store("s3://out/x", storage=storage)
    assert store._s3.meta.endpoint_url == "http://s3.example:9000"
    assert open_store("file:///tmp/ftjobs-x", storage=storage).uri == "file:///tmp/ftjobs-x"
    # An explicit endpoint overrides the spec's for the URI's backend.
    store = open_store("s3://out/x", storage=storage, endpoint="http://other:1")
    assert store._s3.meta.endpoint_url == "http://other:1"


def test_failures_are_mapped_by_the_uris_backend() -> None:
    failure = failure_from(ConnectionResetError(), "s3://b/train.jsonl", {})
    assert failure is not None and failure.retriable
    assert "s3://b/train.jsonl (endpoint AWS S3)" in str(failure)
    assert failure_from(ValueError("bad json"), "s3://b/train.jsonl", {}) is None
    assert failure_from(ConnectionResetError(), "file:///tmp/x.jsonl", {}) is None


def test_gs_is_a_registered_bucket_scheme() -> None:
    assert "gs" in SCHEMES and is_remote("gs://b/k")
    parsed = parse_uri("gs://my-bucket/a/b")
    assert (parsed.scheme, parsed.bucket, parsed.prefix, str(parsed)) == (
        "gs",
        "my-bucket",
        "a/b/",
        "gs://my-bucket/a/b",
    )
