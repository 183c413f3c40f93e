"""The one error hierarchy (api.errors) and the Kubernetes time format (api.timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ftjobs.api.errors import FtjobsError, NotFound, PermanentError, RetriableError
from ftjobs.api.timestamps import format_micro_time, format_time, now_time, parse_time
from ftjobs.k8s.errors import (
    AlreadyExists,
    Conflict,
    KubeError,
    KubeNotFound,
    KubePermanent,
    KubeRetriable,
    classify_status,
)
from ftjobs.storage.errors import CorruptObject, ObjectNotFound, StorageError
from ftjobs.trainer.data.errors import DataError
from ftjobs.trainer.errors import ModelError, Stopped


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (KubeNotFound, NotFound),
        (ObjectNotFound, NotFound),
        (KubePermanent, PermanentError),
        (AlreadyExists, PermanentError),
        (KubeRetriable, RetriableError),
        (Conflict, RetriableError),
        (ModelError, PermanentError),
        (DataError, PermanentError),
        (Stopped, RetriableError),
        (StorageError, FtjobsError),
        (KubeError, FtjobsError),
    ],
)
def test_every_layer_raises_into_one_hierarchy(cls: type, base: type) -> None:
    assert issubclass(cls, base)


def test_not_found_from_either_adapter_is_caught_as_one() -> None:
    caught = []
    for error in (classify_status(404, b"{}"), ObjectNotFound("gone", uri="s3://b/k")):
        try:
            raise error
        except NotFound as exc:
            caught.append(exc.retriable)
    assert caught == [False, False]


def test_retriable_is_per_instance_for_storage_and_per_class_elsewhere() -> None:
    assert StorageError("x", retriable=False).retriable is False
    assert CorruptObject("x").retriable is True
    assert classify_status(503, b"{}").retriable is True
    assert classify_status(422, b"{}").retriable is False
    assert classify_status(409, b"{}").delay == pytest.approx(0.2)


def test_time_formats_and_round_trip() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert format_time(t) == "2026-01-02T03:04:05Z"
    assert format_micro_time(t) == "2026-01-02T03:04:05.123456Z"
    assert parse_time(format_micro_time(t)) == t
    assert parse_time(format_time(t)) == t.replace(microsecond=0)
    # Another zone is written as UTC.
    east = t.astimezone(timezone(timedelta(hours=2)))
    assert format_time(east) == "2026-01-02T03:04:05Z"
    assert abs(parse_time(now_time()) - datetime.now(UTC)) < timedelta(seconds=5)
