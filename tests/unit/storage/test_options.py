"""Endpoint/region resolution and datasets' storage options."""

import pytest

from ftjobs.storage import datasets_storage_options, resolve_endpoint, resolve_region


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_endpoint_argument_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint() is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env:9000")
    assert resolve_endpoint() == "http://env:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3env:9000")
    assert resolve_endpoint() == "http://s3env:9000"
    assert resolve_endpoint("http://spec:9000") == "http://spec:9000"


def test_region(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_region() == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert resolve_region() == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert resolve_region() == "eu-central-1"
    assert resolve_region("ap-south-1") == "ap-south-1"


def test_storage_options_are_a_fresh_dict_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretexamplevalue")
    first = datasets_storage_options("http://s3:9000", "eu-west-1")
    expected = {
        "client_kwargs": {"endpoint_url": "http://s3:9000", "region_name": "eu-west-1"},
        "config_kwargs": {
            "retries": {"total_max_attempts": 10, "mode": "standard"},
            "connect_timeout": 10.0,
            "read_timeout": 120.0,
            "s3": {"addressing_style": "path"},
        },
        "key": "AKIDEXAMPLEKEY",
        "secret": "secretexamplevalue",
    }
    assert first == expected
    # What datasets does to the dict it is given: pop and mutate nested values.
    first.pop("key")
    first["client_kwargs"]["endpoint_url"] = "mutated"
    first["config_kwargs"]["retries"]["total_max_attempts"] = 0
    assert datasets_storage_options("http://s3:9000", "eu-west-1") == expected


def test_storage_options_without_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    options = datasets_storage_options()
    assert "key" not in options and "secret" not in options
    assert "endpoint_url" not in options["client_kwargs"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretexamplevalue")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tokenexamplevalue")
    assert datasets_storage_options()["token"] == "tokenexamplevalue"
