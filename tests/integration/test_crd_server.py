"""The generated CRD on a real API server: it installs, accepts generated valid specs (with
the same defaults as the models), enforces immutability, and `kubectl explain` shows the
docs. Invalid specs: test_invalid_specs_server.py.

Uses the control-plane fixtures of tests/fixtures/plugin.py: `cluster` (.kubectl(*args)),
`k8s_api` (kubernetes.client.ApiClient) and `namespace` (a fresh namespace name).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from kubernetes import client

from ftjobs.api import constants
from ftjobs.api.crd import IMMUTABLE_MESSAGE
from ftjobs.api.validation import parse_job
from ftjobs.render import is_namespace_identity
from ftjobs.sdk import yaml_output
from ftjobs.sdk.manifests import render_manifests
from ftjobs.sdk.schema import crd_yaml
from ftjobs.sdk.spec import load_documents
from tests.strategies import finetunejob_docs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spam-classification.yaml"
HYPOTHESIS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def kubectl(cluster: Any, *args: str) -> tuple[int, str]:
    """Run kubectl through the fixture; (exit code, stdout + stderr) whether or not it raises."""
    try:
        result = cluster.kubectl(*args)
    except subprocess.CalledProcessError as exc:
        result = exc
    output = f"{_text(result.stdout)}\n{_text(result.stderr)}"
    return result.returncode, output


def server_dry_run(cluster: Any, namespace: str, path: str) -> tuple[int, str]:
    """`kubectl create --dry-run=server --validate=strict` of the file at `path`."""
    return kubectl(
        cluster, "create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", path
    )


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def write_yaml(objects: list[dict[str, Any]]) -> str:
    path = Path(tempfile.mkdtemp()) / "objects.yaml"
    # What `ftjobs render` prints, so kubectl reads exactly what users pipe to it.
    path.write_text(yaml_output.dump_all(objects))
    return str(path)


@pytest.fixture(scope="session")
def crd_installed(cluster: Any) -> None:
    path = Path(tempfile.mkdtemp()) / "crd.yaml"
    path.write_text(crd_yaml())
    code, out = kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    assert code == 0, out
    code, out = kubectl(
        cluster,
        "wait",
        "--for=condition=Established",
        f"crd/{constants.CRD_NAME}",
        "--timeout=60s",
    )
    assert code == 0, out


@pytest.fixture
def custom(k8s_api: Any, crd_installed: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_api)


def create(api: client.CustomObjectsApi, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    return api.create_namespaced_custom_object(  # type: ignore[no-any-return]
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, doc
    )


def delete(api: client.CustomObjectsApi, namespace: str, name: str) -> None:
    api.delete_namespaced_custom_object(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
    )


def test_crd_is_established_with_the_short_name(cluster: Any, crd_installed: None) -> None:
    code, out = kubectl(cluster, "api-resources", f"--api-group={constants.GROUP}")
    assert code == 0, out
    assert "ftj" in out and constants.KIND in out


@HYPOTHESIS
@given(doc=finetunejob_docs())
def test_valid_specs_are_accepted_with_the_models_defaults(
    doc: dict[str, Any], custom: client.CustomObjectsApi, namespace: str
) -> None:
    doc["metadata"]["name"] = f"p-{uuid.uuid4().hex[:10]}"
    created = create(custom, namespace, doc)
    try:
        stored = custom.get_namespaced_custom_object(
            constants.GROUP,
            constants.VERSION,
            namespace,
            constants.PLURAL,
            doc["metadata"]["name"],
        )
        # The server's defaults are the models' defaults: the stored spec parses to the
        # same model as the document did offline.
        assert parse_job(stored).spec == parse_job(doc).spec
        assert stored["spec"]["deepspeed"]["zeroStage"] == parse_job(doc).spec.deepspeed.zero_stage
        assert created["metadata"]["uid"]
    finally:
        delete(custom, namespace, doc["metadata"]["name"])


@HYPOTHESIS
@given(doc=finetunejob_docs())
def test_rendered_objects_pass_a_server_side_dry_run(
    doc: dict[str, Any], cluster: Any, namespace: str, crd_installed: None
) -> None:
    # No FineTuneJob is created: a controller watching the cluster would create the same
    # children first. Owner references only need a well-formed uid to pass validation.
    doc["metadata"]["name"] = f"r-{uuid.uuid4().hex[:10]}"
    doc["metadata"]["uid"] = str(uuid.uuid4())
    objects = render_manifests(parse_job(doc), namespace=namespace)
    # Every child is the job's; the namespace's shared trainer identity is nobody's.
    for obj in objects:
        assert bool(obj["metadata"].get("ownerReferences")) != is_namespace_identity(obj), obj
    assert any(not is_namespace_identity(o) for o in objects)
    code, out = server_dry_run(cluster, namespace, write_yaml(objects))
    assert code == 0, out


def test_examples_are_accepted(cluster: Any, namespace: str, crd_installed: None) -> None:
    for path in sorted(EXAMPLE.parent.glob("**/*.yaml")):
        if not any(d.get("kind") == constants.KIND for d in load_documents(path)):
            continue
        code, out = server_dry_run(cluster, namespace, str(path))
        assert code == 0, f"{path.name}: {out}"


def test_spec_is_immutable_except_suspend(
    cluster: Any, namespace: str, crd_installed: None
) -> None:
    code, out = kubectl(cluster, "create", "-n", namespace, "-f", str(EXAMPLE))
    assert code == 0, out
    name = f"{constants.PLURAL}/sms-spam"

    def patch(change: str) -> tuple[int, str]:
        return kubectl(cluster, "patch", "-n", namespace, name, "--type=merge", "-p", change)

    code, out = patch('{"spec": {"suspend": true}}')
    assert code == 0, out
    code, out = patch('{"spec": {"hyperparameters": {"learningRate": 0.001}}}')
    assert code != 0 and "spec.hyperparameters: Invalid value" in out and IMMUTABLE_MESSAGE in out
    code, out = patch('{"spec": {"task": "causal-lm", "evaluation": {"metrics": null}}}')
    assert code != 0 and "spec.task" in out and IMMUTABLE_MESSAGE in out
    # adding an optional section is a change too
    code, out = patch('{"spec": {"lora": {"r": 4}}}')
    assert code != 0 and "spec.lora" in out and IMMUTABLE_MESSAGE in out
    code, out = patch('{"spec": {"queueName": "later"}}')
    assert code != 0 and "spec.queueName" in out


def test_kubectl_explain_shows_the_model_descriptions(cluster: Any, crd_installed: None) -> None:
    # The aggregated OpenAPI picks the CRD up a moment after it is Established.
    deadline = time.monotonic() + 60
    while True:
        code, out = kubectl(cluster, "explain", "finetunejob.spec.hyperparameters")
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert code == 0, out
    assert "learningRate" in out and "Peak learning rate." in out
    assert "Optimisation settings." in out
    code, out = kubectl(cluster, "explain", "ftj.spec.deepspeed.zeroStage")
    assert code == 0 and "ZeRO stage 0-3." in out
