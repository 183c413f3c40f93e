"""The pod side of gs://: the service-account key from a Secret, as a read-only file."""

from typing import Any

from ftjobs.render.schemes import secret_needs
from tests.builders import JobBuilder, make_job
from tests.unit.render.helpers import container, env, pod_spec, render, trainer_config_json
from tests.unit.render.test_security import restricted_violations

KEY_FILE = "/var/run/secrets/ftjobs/gcs/service-account.json"


def gs_job(**gcs: Any) -> JobBuilder:
    return (
        make_job("llm")
        .model("s3://models/llama/")
        .train("s3://data/train.jsonl")
        .spec(
            "storage",
            {"output": "gs://ml-outputs/runs", "credentialsSecret": "s3-creds", "gcs": gcs},
        )
    )


def test_the_key_is_a_read_only_file_from_the_secret() -> None:
    objects = render(gs_job(credentialsSecret="gcs-key", project="ml-team-123"))
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["gcs-credentials"] == {
        "name": "gcs-credentials",
        "secret": {
            "secretName": "gcs-key",
            "items": [{"key": "service-account.json", "path": "service-account.json"}],
            "defaultMode": 0o440,
        },
    }
    mounts = {m["name"]: m for m in container(objects)["volumeMounts"]}
    assert mounts["gcs-credentials"] == {
        "name": "gcs-credentials",
        "mountPath": "/var/run/secrets/ftjobs/gcs",
        "readOnly": True,
    }
    variables = env(objects)
    assert variables["GOOGLE_APPLICATION_CREDENTIALS"] == {
        "name": "GOOGLE_APPLICATION_CREDENTIALS",
        "value": KEY_FILE,
    }
    assert variables["GOOGLE_CLOUD_PROJECT"]["value"] == "ml-team-123"
    # Mixed schemes: the s3:// credentials are still there for the model and data.
    assert variables["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"
    assert restricted_violations(pod_spec(objects)) == []
    # The config (a pod annotation) names the Secret, never a key.
    config = trainer_config_json(objects)
    assert "gcs-key" in config and "private_key" not in config


def test_without_a_secret_the_pods_use_their_own_identity() -> None:
    objects = render(gs_job(endpoint="http://fake-gcs:4443"))
    assert "gcs-credentials" not in str(pod_spec(objects)["volumes"])
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env(objects)
    # The endpoint reaches the trainer through the spec (job.json), not the environment.
    config = trainer_config_json(objects)
    assert "http://fake-gcs:4443" in config


def test_preflight_is_told_which_secret_keys_each_scheme_needs() -> None:
    needs = secret_needs(gs_job(credentialsSecret="gcs-key").build().spec)
    by_scheme = {n.scheme: n for n in needs}
    assert by_scheme["gs"].name == "gcs-key"
    assert by_scheme["gs"].required == ("service-account.json",)
    assert by_scheme["gs"].field == "spec.storage.gcs.credentialsSecret"
    assert by_scheme["s3"].required == ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    assert [n.scheme for n in secret_needs(make_job("llm").build().spec)] == []
