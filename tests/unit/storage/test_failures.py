"""The classification table: S3 codes and exception kinds -> retriable or permanent."""

from __future__ import annotations

import errno

import botocore.exceptions
import pytest

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE
from ftjobs.storage import ObjectNotFound, StorageError
from ftjobs.storage.failures import (
    STORAGE_FAILURES,
    class_of_code,
    exception_class,
    storage_failure,
)
from ftjobs.trainer.__main__ import classify
from ftjobs.trainer.data import DataError

pytestmark = pytest.mark.unit


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "name", "exit_code"),
    [
        ("SlowDown", 503, "throttled", EXIT_RETRIABLE),
        ("InternalError", 500, "server-error", EXIT_RETRIABLE),
        ("ServiceUnavailable", 503, "server-error", EXIT_RETRIABLE),
        ("WhateverBroke", 502, "server-error", EXIT_RETRIABLE),
        ("503", 503, "server-error", EXIT_RETRIABLE),  # HEAD: no body, the code is the status
        ("TooManyRequests", 429, "throttled", EXIT_RETRIABLE),
        ("NoSuchBucket", 404, "no-such-bucket", EXIT_PERMANENT),
        ("AccessDenied", 403, "access-denied", EXIT_PERMANENT),
        ("InvalidAccessKeyId", 403, "unknown-access-key", EXIT_PERMANENT),
        ("SignatureDoesNotMatch", 403, "bad-signature", EXIT_PERMANENT),
        ("NoSuchKey", 404, "no-such-object", EXIT_PERMANENT),
        ("InvalidArgument", 400, "request-refused", EXIT_PERMANENT),
    ],
)
def test_s3_codes(code: str, status: int, name: str, exit_code: int) -> None:
    row = class_of_code(code, status)
    assert (row.name, row.exit_code) == (name, exit_code)
    found = exception_class(client_error(code, status))
    assert found is not None and found[0] is row


def test_every_row_has_a_distinct_name_and_advice() -> None:
    names = [row.name for row in STORAGE_FAILURES]
    assert len(names) == len(set(names))
    assert all(row.advice and row.cause and row.matches for row in STORAGE_FAILURES)


def test_exceptions_from_other_libraries() -> None:
    # s3fs turns ClientErrors into OSError/PermissionError with the ClientError as cause.
    wrapped = OSError(errno.EIO, "boom")
    wrapped.__cause__ = client_error("SlowDown", 503)
    assert exception_class(wrapped)[0].name == "throttled"  # type: ignore[index]
    assert exception_class(PermissionError("denied"))[0].name == "access-denied"  # type: ignore[index]
    assert exception_class(ConnectionResetError())[0].name == "network"  # type: ignore[index]
    connect = botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")
    assert exception_class(connect)[0].name == "network"  # type: ignore[index]
    # Bad data is no storage failure.
    assert exception_class(ValueError("Expected object or value")) is None
    assert storage_failure(ValueError("JSON parse error"), "s3://b/train.jsonl", None) is None


def test_storage_failure_messages_name_uri_and_endpoint_not_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")
    error = client_error("InvalidAccessKeyId", 403)
    error.response["Error"]["Message"] = "key AKIAEXAMPLEKEY123456 unknown"
    failure = storage_failure(error, "s3://b/train.jsonl", "http://s3.example:9000")
    assert isinstance(failure, StorageError) and not failure.retriable
    assert "s3://b/train.jsonl" in str(failure) and "http://s3.example:9000" in str(failure)
    assert "AKIAEXAMPLEKEY123456" not in str(failure)
    assert classify(failure) == EXIT_PERMANENT
    missing = storage_failure(client_error("NoSuchBucket", 404), "s3://nope/x", None)
    assert isinstance(missing, ObjectNotFound) and classify(missing) == EXIT_PERMANENT


def test_trainer_exit_codes() -> None:
    assert classify(StorageError("x")) == EXIT_RETRIABLE
    assert classify(StorageError("x", retriable=False)) == EXIT_PERMANENT
    assert classify(ObjectNotFound("x")) == EXIT_PERMANENT
    assert classify(DataError("s3://b/t.jsonl: row 3: field 'text': missing")) == EXIT_PERMANENT
