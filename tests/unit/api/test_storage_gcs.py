"""gs:// URIs and spec.storage.gcs in the API: accepted where a store is read or written,
refused with a message that names the field and the forms it takes."""

import pytest

from ftjobs.api.validation import parse_job
from tests.unit.api.test_models import doc, errors


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", {"uri": "gs://models-bucket/llama/v3/"}),
        ("dataset", {"train": "gs://data_bucket/v42/train.jsonl"}),
        ("storage", {"output": "gs://ml.outputs.example.com/runs"}),
    ],
)
def test_gs_uris_are_accepted(field: str, value: dict[str, str]) -> None:
    spec = parse_job(doc(**{field: value})).spec
    assert "gs://" in str(getattr(spec, field).model_dump())


@pytest.mark.parametrize("uri", ["gs://", "gs://B/upper", "gs://-bucket/x", "gcs://bucket/x"])
def test_bad_gs_uris_are_refused_naming_the_forms(uri: str) -> None:
    found = errors(doc(storage={"output": uri}))
    assert "gs://bucket/key" in found["spec.storage.output"]


def test_the_gcs_block() -> None:
    storage = {
        "output": "gs://out/x",
        "gcs": {
            "endpoint": "http://127.0.0.1:4443",
            "credentialsSecret": "gcs-key",
            "project": "ml-team-123",
        },
    }
    gcs = parse_job(doc(storage=storage)).spec.storage.gcs
    assert gcs is not None and gcs.credentials_secret == "gcs-key"
    bad = errors(doc(storage={"output": "gs://out/x", "gcs": {"credentialsSecret": "Not_A_Name"}}))
    assert "spec.storage.gcs.credentialsSecret" in bad
    # Keys never go in the spec: there is no field for one.
    assert "spec.storage.gcs.privateKey" in errors(
        doc(storage={"output": "gs://out/x", "gcs": {"privateKey": "x"}})
    )
