"""S3 transfer settings (pure: no client is created, no network)."""

from ftjobs.storage import TransferSettings
from ftjobs.storage.base import MiB
from ftjobs.storage.s3 import make_client, transfer_config


def test_defaults_match_the_design() -> None:
    config = transfer_config(TransferSettings())
    assert config.multipart_threshold == 16 * MiB
    assert config.multipart_chunksize == 16 * MiB
    assert config.max_request_concurrency == 10
    assert TransferSettings().max_attempts == 10


def test_parts_grow_for_huge_files_to_stay_under_the_part_limit() -> None:
    size = 400 * 1024 * MiB  # 400 GiB: 16 MiB parts would need 25,600 parts
    config = transfer_config(TransferSettings(), size)
    assert size / config.multipart_chunksize <= 9_000
    assert transfer_config(TransferSettings(), 100 * MiB).multipart_chunksize == 16 * MiB


def test_client_retries_with_backoff_and_path_style_for_custom_endpoints() -> None:
    # Building a client makes no request; credentials are not needed until the first call.
    client = make_client("http://127.0.0.1:9000", "eu-west-1", TransferSettings())
    config = client.meta.config
    assert config.retries == {"total_max_attempts": 10, "mode": "standard"}
    assert config.s3 == {"addressing_style": "path"}
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:9000"
    aws = make_client(None, "us-east-1", TransferSettings(retry_mode="adaptive"))
    assert aws.meta.config.retries["mode"] == "adaptive"
    assert aws.meta.config.s3 == {"addressing_style": "auto"}


def test_buffered_parts_are_bounded_by_the_concurrency() -> None:
    assert transfer_config(TransferSettings(max_concurrency=3)).max_in_memory_upload_chunks == 3
