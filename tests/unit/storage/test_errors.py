"""Messages never carry credentials."""

import pytest

from ftjobs.storage import ObjectNotFound, StorageError


def test_messages_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretexamplevalue")
    error = ObjectNotFound("signature for AKIDEXAMPLEKEY/secretexamplevalue failed", uri="s3://b/k")
    assert isinstance(error, StorageError)
    assert str(error) == "signature for ***/*** failed"
    assert error.uri == "s3://b/k"
