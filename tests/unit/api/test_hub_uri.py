"""hf:// URIs: repo, kind and revision, and the spec rules around model.revision."""

import pytest

from ftjobs.api.hub_uri import HubRef, parse_hub_uri
from ftjobs.api.validation import SpecError, parse_job
from tests.builders import make_job


@pytest.mark.parametrize(
    ("uri", "revision", "expected"),
    [
        ("hf://org/name", None, HubRef("model", "org/name", None)),
        ("hf://org/name@v1", None, HubRef("model", "org/name", "v1")),
        ("hf://gpt2", "main", HubRef("model", "gpt2", "main")),
        ("hf://org/name@refs/pr/1", None, HubRef("model", "org/name", "refs/pr/1")),
        ("hf://datasets/org/data", None, HubRef("dataset", "org/data", None)),
        ("hf://datasets/org/data@v2/a/b.jsonl", None, HubRef("dataset", "org/data", "v2")),
        ("hf://datasets/org/data/train.jsonl", "x", HubRef("dataset", "org/data", "x")),
    ],
)
def test_parse_hub_uri(uri: str, revision: str | None, expected: HubRef) -> None:
    assert parse_hub_uri(uri, revision) == expected


def test_hub_uris_accepted_where_they_can_be_read() -> None:
    job = make_job("a").model("hf://org/name@v1").train("hf://datasets/org/d@main/x.jsonl")
    assert job.build().spec.model.uri == "hf://org/name@v1"
    make_job("b").model("hf://org/name", revision="0123abc").build()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://models/llama/", "revision applies to hf:// models"),
        ("file:///models/llama", "revision applies to hf:// models"),
        ("hf://org/name@v1", "revision is given twice"),
    ],
)
def test_revision_is_refused_where_it_would_be_ignored_or_ambiguous(uri: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_job(make_job("a").model(uri, revision="v2").doc())
    assert [(e.path, message in e.message) for e in info.value.errors] == [
        ("spec.model.revision", True)
    ]
