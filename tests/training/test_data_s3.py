"""prepare_data against the real test S3 server (versitygw): s3:// files and prefixes,
map-style and streaming, through `datasets` + s3fs with fresh storage options."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ftjobs.storage import datasets_storage_options, open_store
from ftjobs.trainer.data import DataError, prepare_data
from tests.training.test_data import make_spec, sentiment_rows, texts


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


def test_s3_prefix_map_style_and_streaming_match_local_semantics(s3_env: Any, bucket: str) -> None:
    store = open_store(f"s3://{bucket}/datasets")
    store.put_bytes("sentiment/part-0.jsonl", jsonl_bytes(sentiment_rows(40)))
    store.put_bytes("sentiment/part-1.parquet", parquet_bytes(sentiment_rows(40, offset=100)))
    store.put_bytes("sentiment/_SUCCESS", b"")
    store.put_bytes("held/test.jsonl", jsonl_bytes(sentiment_rows(10, offset=500)))

    calls: list[dict[str, Any]] = []

    def options() -> dict[str, Any]:
        opts = datasets_storage_options(s3_env.endpoint_url, s3_env.region)
        calls.append(opts)
        return opts

    common = {"test": f"s3://{bucket}/datasets/held/test.jsonl"}
    spec = make_spec("sequence-classification", f"s3://{bucket}/datasets/sentiment/", **common)
    whole = prepare_data(spec, storage_options=options)
    assert whole.report["sources"]["train"] == [
        f"s3://{bucket}/datasets/sentiment/part-0.jsonl",
        f"s3://{bucket}/datasets/sentiment/part-1.parquet",
    ]
    expected = texts(sentiment_rows(40)) + texts(sentiment_rows(40, offset=100))
    assert sorted(texts(whole.train) + texts(whole.validation)) == sorted(expected)
    assert texts(whole.test) == texts(sentiment_rows(10, offset=500))
    # A fresh dict per call: `datasets` mutates the one it is given.
    assert len(calls) >= 3 and len({id(c) for c in calls}) == len(calls)

    stream_spec = make_spec(
        "sequence-classification", f"s3://{bucket}/datasets/sentiment", streaming=True, **common
    )
    shards = [
        texts(prepare_data(stream_spec, rank=r, world_size=2, storage_options=options).train)
        for r in range(2)
    ]
    assert shards[0] and shards[1] and not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(texts(whole.train))


def test_s3_bad_rows_and_missing_keys_name_the_s3_uri(s3_env: Any, bucket: str) -> None:
    store = open_store(f"s3://{bucket}")
    rows = [{"text": "a", "label": "negative"}, {"text": "b", "label": "neutral"}]
    store.put_bytes("d/train.jsonl", jsonl_bytes(rows))

    def options() -> dict[str, Any]:
        return datasets_storage_options(s3_env.endpoint_url, s3_env.region)

    spec = make_spec(
        "sequence-classification", f"s3://{bucket}/d/train.jsonl", labels=["negative", "positive"]
    )
    with pytest.raises(DataError) as err:
        prepare_data(spec, storage_options=options)
    assert str(err.value) == (
        f"s3://{bucket}/d/train.jsonl: row 2: field 'label': unknown label 'neutral' "
        "(known: negative, positive)"
    )
    missing = make_spec("sequence-classification", f"s3://{bucket}/d/nothing-here.jsonl")
    with pytest.raises(DataError, match="no such file or prefix"):
        prepare_data(missing, storage_options=options)
