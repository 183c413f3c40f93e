"""The gs:// backend's pure parts: error classes, fsspec options, Secret credentials.

The exceptions are the client libraries' own classes, built as they raise them; the
server-facing behaviour is tested against fake-gcs-server (tests/integration).
"""

import json
import os
from pathlib import Path

import google.api_core.exceptions as api_errors
import google.auth.exceptions as auth_errors
import pytest
import requests

from ftjobs.storage import backend, failure_from, fsspec_options
from ftjobs.storage.gcs import classify, resolve_endpoint


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("error", "row", "retriable"),
    [
        (api_errors.NotFound("No such object: b/k"), "no-such-object", False),
        (api_errors.NotFound("The specified bucket does not exist."), "no-such-bucket", False),
        (api_errors.Forbidden("caller does not have storage.objects.get"), "access-denied", False),
        (api_errors.Unauthorized("Invalid Credentials"), "unknown-access-key", False),
        (api_errors.TooManyRequests("rate"), "throttled", True),
        (api_errors.ServiceUnavailable("backend"), "server-error", True),
        (api_errors.InternalServerError("oops"), "server-error", True),
        (auth_errors.RefreshError("invalid_grant"), "unknown-access-key", False),
        (auth_errors.DefaultCredentialsError("no ADC"), "no-credentials", False),
        (requests.exceptions.ConnectionError("refused"), "network", True),
        (ConnectionResetError(), "network", True),
    ],
)
def test_errors_map_to_the_failure_table(error: BaseException, row: str, retriable: bool) -> None:
    found = classify(error)
    assert found is not None
    assert found[0].name == row and found[0].retriable is retriable


def test_bad_data_is_no_storage_failure() -> None:
    assert classify(ValueError("JSON parse error")) is None
    assert failure_from(ValueError("JSON parse error"), "gs://b/train.jsonl", {}) is None


def test_a_wrapped_error_is_found_through_its_cause() -> None:
    try:
        try:
            raise api_errors.ServiceUnavailable("backend")
        except api_errors.ServiceUnavailable as inner:
            raise RuntimeError("datasets gave up") from inner
    except RuntimeError as outer:
        failure = failure_from(outer, "gs://b/train.jsonl", {"endpoint_url": "http://fake:4443"})
    assert failure is not None and failure.retriable
    assert "gs://b/train.jsonl (endpoint http://fake:4443)" in str(failure)
    missing = failure_from(api_errors.NotFound("No such object"), "gs://b/x.jsonl", {})
    assert missing is not None and not missing.retriable
    assert "(Google Cloud Storage)" in str(missing)


def test_endpoint_from_the_spec_else_the_emulator_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint(None) is None
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    assert resolve_endpoint(None) == "http://127.0.0.1:4443"
    assert resolve_endpoint("https://gcs.internal/") == "https://gcs.internal"


def test_fsspec_options_per_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ftjobs.api.storage import Storage

    emulator = Storage.model_validate(
        {"output": "gs://out/x", "gcs": {"endpoint": "http://fake:4443"}}
    )
    options = fsspec_options("gs://b/train.jsonl", storage=emulator)
    assert options["endpoint_url"] == "http://fake:4443" and options["token"] == "anon"
    assert options is not fsspec_options("gs://b/train.jsonl", storage=emulator)
    # Google itself: Application Default Credentials (Workload Identity) ...
    assert fsspec_options("gs://b/k")["token"] == "google_default"
    assert "endpoint_url" not in fsspec_options("gs://b/k")
    # ... or the key file the pod mounts from the Secret, also against an endpoint.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
    assert fsspec_options("gs://b/k", storage=emulator)["token"] == str(tmp_path / "sa.json")
    # s3:// URIs of the same job keep the s3 settings.
    assert "client_kwargs" in fsspec_options("s3://b/k", storage=emulator)


def test_a_secrets_key_is_a_private_file_for_the_block_only() -> None:
    key = json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----x"})
    with backend("gs").credentials({"service-account.json": key}):
        path = Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
        assert path.read_text() == key
        assert path.stat().st_mode & 0o777 == 0o600
    assert not path.exists() and not path.parent.exists()
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ
    with backend("gs").credentials({}):  # no Secret: the caller's own identity
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ
