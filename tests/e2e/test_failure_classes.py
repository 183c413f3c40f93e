"""Every row of the failure table, end to end: a real trainer fails for a real reason, and
the FineTuneJob's status says what the table says (retried or Failed, and why).

For each class the trainer (`python -m ftjobs.trainer.launch`, one process) runs against
the test S3 server with the fault that causes it: a closed port (network), answers of
500 / 503 SlowDown / 403 AccessDenied from the status front in tests/fixtures/faults.py
(named as injected: versitygw cannot be made to answer them), a bucket that does not
exist, an unknown access key, a wrong secret key, a model prefix with nothing in it, and a
data file with a broken row. Its exit code and termination message then end the attempt's
kwok pod, and the real controller writes the job's status.

`test_the_secret_never_leaks` is the secrets test that can fail: the trainer fails with a
canary secret in its environment and in the failing request; trainer logs, termination
message, status, events, controller logs and `ftjobs status` / `ftjobs preflight` output
are scanned for it, and a canary planted in an Event proves the scan finds a leak.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ftjobs.storage.failures import STORAGE_FAILURES
from ftjobs.trainer.errors import TRAINER_FAILURES
from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for
from tests.fixtures.faults import StatusFaultFront, Toxiproxy
from tests.training.trainer_run import classification_spec, launch, write_config

pytestmark = pytest.mark.e2e

CANARY_KEY_ID = f"CANARYKEY{uuid.uuid4().hex[:12].upper()}"
CANARY_SECRET = f"canary-secret-{uuid.uuid4().hex}"


@dataclass
class Outcome:
    code: int
    message: str
    logs: str


# class -> (what the message must say); the cause is set up in `cause_env_and_spec`.
EXPECTED = {
    "network": "connect",
    "server-error": "InternalError",
    "throttled": "SlowDown",
    "no-such-bucket": "no such bucket",
    "access-denied": "AccessDenied",
    "unknown-access-key": "does not know the access key id",  # versitygw: XAdminUserNotFound
    "bad-signature": "SignatureDoesNotMatch",
    "model-missing": "models/none",
    "bad-data": "row 3",
}
# Rows that a test here does not cause, and why (kept honest: the list is checked).
NOT_CAUSED_HERE = {
    "no-credentials": "covered by tests/integration/test_storage_s3.py (no AWS_* at all)",
    "no-such-object": "same code path as model-missing (a NotFound from the store)",
    "request-refused": "any other 4xx; classified by status in tests/unit/storage",
    "model-unloadable": "covered by tests/training/test_exit_codes.py",
    "stopped": "covered by tests/training/test_checkpoint_resume.py (SIGTERM)",
}
RESULTS: dict[str, Outcome] = {}


def test_the_rows_here_are_the_rows_of_the_table() -> None:
    names = {row.name for row in STORAGE_FAILURES + TRAINER_FAILURES}
    assert set(EXPECTED) | set(NOT_CAUSED_HERE) == names


@pytest.fixture(scope="module")
def api(cluster: Any) -> Api:
    install_crd(cluster)
    return Api(cluster.kubeconfig)


@pytest.fixture(scope="module")
def controller(cluster: Any, api: Api) -> Iterator[ControllerProcess]:
    proc = ControllerProcess(
        cluster.kubeconfig,
        "--all-namespaces",
        "--lease-namespace",
        "default",
        "--lease-name",
        f"ftjobs-fc-{uuid.uuid4().hex[:6]}",
        "--resync-seconds",
        "10",
    ).start()
    wait_for("the controller to lead", lambda: '"leading"' in proc.logs(), 60)
    yield proc
    proc.stop()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def cause_env_and_spec(
    kind: str, s3: Any, front: StatusFaultFront, bucket: str, tmp: Path
) -> tuple[dict[str, str], dict[str, Any]]:
    """The trainer's environment and spec that make `kind` happen for real."""
    rows = [{"text": f"text {i}", "label": ["neg", "pos"][i % 2]} for i in range(40)]
    lines = [json.dumps(r) for r in rows]
    if kind == "bad-data":
        lines[2] = '{"text": "broken row", "label": '
    body = ("\n".join(lines) + "\n").encode()
    s3.client().put_object(Bucket=bucket, Key="data/train.jsonl", Body=body)
    env = {k: v for k, v in s3.env().items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(FTJOBS_S3_MAX_ATTEMPTS="2", AWS_EC2_METADATA_DISABLED="true")
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    endpoint = s3.endpoint_url
    output = f"s3://{bucket}/out/{kind}"
    if kind == "network":
        endpoint = _closed_port()
    elif kind in ("server-error", "throttled", "access-denied"):
        endpoint = front.endpoint_url
        status, code = {
            "server-error": (500, "InternalError"),
            "throttled": (503, "SlowDown"),
            "access-denied": (403, "AccessDenied"),
        }[kind]
        front.fail(status, code, key_contains=f"/out/{kind}/")
    elif kind == "no-such-bucket":
        output = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/out"
    elif kind == "unknown-access-key":
        env["AWS_ACCESS_KEY_ID"] = CANARY_KEY_ID
    elif kind == "bad-signature":
        env["AWS_SECRET_ACCESS_KEY"] = CANARY_SECRET
    spec = classification_spec(
        tmp / "unused-model",
        tmp / "unused.jsonl",
        tmp / "unused-out",
        model={"uri": f"s3://{bucket}/models/none/"},
        dataset={"train": f"s3://{bucket}/data/train.jsonl"},
        storage={"output": output, "endpoint": endpoint},
        resources={"nodes": 1},
        hyperparameters={"globalBatchSize": 2, "microBatchSize": 2},
    )
    return env, spec


def run_trainer(kind: str, s3: Any, front: StatusFaultFront, bucket: str, tmp: Path) -> Outcome:
    env, spec = cause_env_and_spec(kind, s3, front, bucket, tmp)
    config = tmp / "job.json"
    write_config(config, spec, name=f"fc-{kind}")
    nodes = launch(config, tmp / "run", nnodes=1, nproc=1, env=env)
    (code,) = nodes.wait(timeout=600)
    front.reset()
    message = nodes.termination_logs[0].read_text() if nodes.termination_logs[0].exists() else ""
    return Outcome(code, message, nodes.output())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_failure_class_reaches_the_job_status(
    kind: str,
    cluster: Any,
    api: Api,
    controller: ControllerProcess,
    namespace: str,
    s3_server: Any,
    bucket: str,
    s3_faults: tuple[Toxiproxy, StatusFaultFront],
    tmp_path: Path,
) -> None:
    row = next(r for r in STORAGE_FAILURES + TRAINER_FAILURES if r.name == kind)
    outcome = run_trainer(kind, s3_server, s3_faults[1], bucket, tmp_path)
    RESULTS[kind] = outcome
    assert outcome.code == row.exit_code, outcome.logs[-3000:]
    assert EXPECTED[kind] in outcome.message, outcome.message
    if not row.retriable and kind not in ("bad-data", "model-missing"):
        # A permanent storage failure names the bucket and the endpoint to check.
        assert "bucket '" in outcome.message and "http://127.0.0.1:" in outcome.message

    name = f"fc-{kind}"
    api.create_ftj(ftj_manifest(name, namespace))
    api.wait_phase(namespace, name, "Running")
    for pod in api.running_pods(namespace, name, 1, 1):
        cluster.pod_exit(pod["metadata"]["name"], namespace, outcome.code, outcome.message)
    if row.retriable:
        wait_for("attempt 2", lambda: api.status(namespace, name).get("attempt") == 2, 60)
        status = api.status(namespace, name)
        assert status["restarts"] == 1
        events = json.dumps(api.events(namespace, name))
        assert "Restarting" in events and EXPECTED[kind] in events
    else:
        status = api.wait_phase(namespace, name, "Failed")
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["reason"] == "PermanentFailure"
        assert EXPECTED[kind] in failed["message"]
        assert status.get("restarts", 0) == 0


def scan(sources: dict[str, str], secret: str) -> list[str]:
    return sorted(name for name, text in sources.items() if secret in text)


@pytest.mark.timeout(900)
def test_the_secret_never_leaks(
    cluster: Any,
    api: Api,
    controller: ControllerProcess,
    namespace: str,
    s3_server: Any,
    bucket: str,
    s3_faults: tuple[Toxiproxy, StatusFaultFront],
    tmp_path: Path,
) -> None:
    from ftjobs.cli.main import app

    runs = {}
    for kind in ("unknown-access-key", "bad-signature"):
        if kind not in RESULTS:
            RESULTS[kind] = run_trainer(kind, s3_server, s3_faults[1], bucket, tmp_path / kind)
        runs[kind] = RESULTS[kind]
    # The job in the cluster takes its credentials from a Secret holding the canaries.
    api.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "canary-creds", "namespace": namespace},
            "stringData": {
                "AWS_ACCESS_KEY_ID": CANARY_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
            },
        }
    )
    name = "leak"
    storage = {
        "output": f"s3://{bucket}/out/leak",
        "endpoint": s3_server.endpoint_url,
        "credentialsSecret": "canary-creds",
    }
    manifest = ftj_manifest(name, namespace, storage=storage)
    api.create_ftj(manifest)
    api.wait_phase(namespace, name, "Running")
    outcome = runs["bad-signature"]
    for pod in api.running_pods(namespace, name, 1, 1):
        cluster.pod_exit(pod["metadata"]["name"], namespace, outcome.code, outcome.message)
    api.wait_phase(namespace, name, "Failed")

    spec_file = tmp_path / "leak.yaml"
    spec_file.write_text(yaml.safe_dump(manifest))
    runner = CliRunner()
    kube = ["--kubeconfig", cluster.kubeconfig, "-n", namespace]
    cli_status = runner.invoke(app, ["status", name, *kube])
    # preflight reads the Secret and talks to S3 with the canary credentials.
    cli_preflight = runner.invoke(app, ["preflight", str(spec_file), *kube])
    # The canary key is unknown to the server: versitygw with IAM says InvalidAccessKeyId
    # (without IAM: XAdminUserNotFound); a known key with a wrong secret: SignatureDoesNotMatch.
    codes = ("SignatureDoesNotMatch", "InvalidAccessKeyId", "XAdminUserNotFound")
    assert any(code in cli_preflight.output for code in codes), cli_preflight.output

    def sources() -> dict[str, str]:
        return {
            "trainer logs": "".join(r.logs for r in runs.values()),
            "termination messages": "".join(r.message for r in runs.values()),
            "FineTuneJob": json.dumps(api.ftj(namespace, name)),
            "events": json.dumps(api.events(namespace, name)),
            "controller logs": controller.logs(),
            "ftjobs status": cli_status.output,
            "ftjobs preflight": cli_preflight.output,
        }

    for secret in (CANARY_SECRET, CANARY_KEY_ID):
        assert scan(sources(), secret) == []

    # Negative control: a leak planted in a real Event is found by the same scan.
    job = api.ftj(namespace, name)
    assert job is not None
    api.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.planted", "namespace": namespace},
            "involvedObject": {
                "apiVersion": job["apiVersion"],
                "kind": job["kind"],
                "name": name,
                "namespace": namespace,
                "uid": job["metadata"]["uid"],
            },
            "reason": "Planted",
            "message": f"planted canary {CANARY_SECRET}",
            "type": "Warning",
        }
    )
    wait_for("the planted event", lambda: scan(sources(), CANARY_SECRET) == ["events"], 30)
