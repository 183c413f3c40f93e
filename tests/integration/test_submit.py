"""`ftjobs submit/wait/status/list/cancel/check/preflight` on the real control plane.

The CLI runs as a subprocess exactly as a user or CI runs it; the controller runs as
`python -m ftjobs.controller` for this module's namespace; kwok plays the pods, which a
helper thread ends with the exit code a trainer would return (after publishing the
status metrics rank 0 publishes). Storage checks hit the real S3 server with the
credentials of a real Secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.constants import EXIT_PERMANENT
from tests.e2e.harness import Api, ControllerProcess, install_crd, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "spam-classification.yaml"
FTJOBS = str(Path(sys.executable).parent / "ftjobs")
SECRET = "s3-credentials"


@pytest.fixture(scope="module")
def ns(cluster: Any) -> Iterator[str]:
    name = f"t-submit-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name, check=True)
    wait_for(
        "the default ServiceAccount",
        lambda: cluster.kubectl("get", "sa", "default", "-n", name).returncode == 0,
        60,
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def controller(cluster: Any, ns: str) -> Iterator[ControllerProcess]:
    install_crd(cluster)
    proc = ControllerProcess(
        cluster.kubeconfig,
        "--namespace", ns,
        "--lease-namespace", ns,
        "--lease-name", "ftjobs-submit-it",
        "--lease-duration", "4",
        "--lease-renew", "1",
        "--resync-seconds", "5",
        name="submit-it",
    ).start()  # fmt: skip
    wait_for("the controller to lead", lambda: '"leading"' in proc.logs(), 60)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def data(cluster: Any, ns: str, s3_server: Any, s3_client: Any) -> Iterator[dict[str, str]]:
    """A bucket with the example's CSV and a Secret holding the S3 keys."""
    bucket = f"ftjobs-submit-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(
        Bucket=bucket, Key="sms/v1/messages.csv", Body=b"category,message\nham,hi\nspam,win\n"
    )
    cluster.kubectl(
        "create", "secret", "generic", SECRET, "-n", ns,
        f"--from-literal=AWS_ACCESS_KEY_ID={s3_server.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={s3_server.secret_key}",
        check=True,
    )  # fmt: skip
    yield {"bucket": bucket, "endpoint": s3_server.endpoint_url}
    from tests.fixtures.plugin import empty_and_delete_bucket

    empty_and_delete_bucket(s3_client, bucket)


def sets(data: dict[str, str], **extra: str) -> list[str]:
    values = {
        "dataset.train": f"s3://{data['bucket']}/sms/v1/messages.csv",
        "storage.output": f"s3://{data['bucket']}/out",
        "storage.endpoint": data["endpoint"],
        "storage.credentialsSecret": SECRET,
        "resources.cpu": "1",
        "resources.memory": "1Gi",
        "failurePolicy.maxRestarts": "0",
        **extra,
    }
    out: list[str] = []
    for key, value in values.items():
        out += ["--set", f"{key}={value}"]
    return out


def ftjobs(cluster: Any, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "KUBECONFIG": cluster.kubeconfig}
    # No AWS_* in the environment: storage checks must use the Secret's credentials.
    return subprocess.run(
        [FTJOBS, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def submit(
    cluster: Any, name: str, ns: str, data: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`ftjobs submit` of the example as `name` in `ns`, on the test bucket (`sets(data)`)."""
    return ftjobs(cluster, "submit", str(EXAMPLE), "--name", name, "-n", ns, *sets(data), *args)


class PodDriver(threading.Thread):
    """Plays the trainer: once the attempt's pods run, publish metrics (as rank 0 does)
    and end every pod with `code`."""

    def __init__(
        self, cluster: Any, api: Api, ns: str, name: str, code: int, message: str = ""
    ) -> None:
        super().__init__(daemon=True)
        self.cluster, self.api, self.ns, self.name = cluster, api, ns, name
        self.code, self.message = code, message
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            pods = wait_for(
                f"pods of {self.name}",
                lambda: [
                    p
                    for p in self.api.pods(self.ns, self.name, 1)
                    if (p.get("status") or {}).get("phase") == "Running"
                ],
                90,
            )
            if self.code == 0:
                self.api.kube.patch_finetunejob_status(
                    self.ns,
                    self.name,
                    {
                        "progress": {"step": 12, "totalSteps": 12, "loss": 0.12, "percent": 100},
                        "metrics": {
                            "split": "test",
                            "base": {"accuracy": 0.5},
                            "fineTuned": {"accuracy": 0.93},
                        },
                    },
                )
            for pod in pods:
                self.cluster.pod_exit(pod["metadata"]["name"], self.ns, self.code, self.message)
        except BaseException as exc:
            self.error = exc


@pytest.fixture(scope="module")
def api(cluster: Any) -> Api:
    return Api(cluster.kubeconfig)


def test_submit_wait_succeeds_exits_0_and_resubmit_is_idempotent(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str], api: Api,
    tmp_path: Path,
) -> None:  # fmt: skip
    name = "spam-ok"
    driver = PodDriver(cluster, api, ns, name, 0)
    driver.start()
    summary = tmp_path / "summary.json"
    run = submit(
        cluster, name, ns, data, "--wait", "--timeout", "150", "--summary", str(summary),
        "--min-metric", "accuracy=0.9",
    )  # fmt: skip
    driver.join(5)
    assert driver.error is None, driver.error
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"finetunejob.ftjobs.dev/{name} created" in run.stdout
    # Phase changes stream as lines (the driver may end the pods before a poll sees Running).
    assert f"{name}: Pending (attempt 1)" in run.stdout and f"{name} Succeeded" in run.stdout
    assert "accuracy >= 0.9 (fine-tuned: 0.93)" in run.stdout
    doc = json.loads(summary.read_text())
    assert doc["phase"] == "Succeeded" and doc["metrics"]["fineTuned"]["accuracy"] == 0.93

    again = submit(cluster, name, ns, data)
    assert again.returncode == 0, again.stderr
    assert f"finetunejob.ftjobs.dev/{name} unchanged" in again.stdout

    changed = submit(cluster, name, ns, data, "--set", "hyperparameters.learningRate=1e-4")
    assert changed.returncode == 1
    assert "already exists with a different spec" in changed.stderr
    assert "hyperparameters.learningRate" in changed.stderr

    gate = ftjobs(cluster, "check", name, "-n", ns, "--min-metric", "accuracy=0.95")
    assert gate.returncode == 1 and "accuracy >= 0.95 (fine-tuned: 0.93)" in gate.stdout
    assert ftjobs(cluster, "check", str(summary), "--min-metric", "accuracy=0.9").returncode == 0

    status = ftjobs(cluster, "status", name, "-n", ns)
    assert status.returncode == 0, status.stderr
    for text in ("Succeeded", "step 12/12", "accuracy", "0.93", "Events"):
        assert text in status.stdout, status.stdout
    listed = ftjobs(cluster, "list", "-n", ns, "-o", "json")
    assert name in [i["metadata"]["name"] for i in json.loads(listed.stdout)["items"]]


def test_permanent_failure_exits_1_with_the_reason(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str], api: Api
) -> None:
    name = "spam-bad"
    driver = PodDriver(cluster, api, ns, name, EXIT_PERMANENT, "label column 'category' missing")
    driver.start()
    run = submit(cluster, name, ns, data, "--wait", "--timeout", "150")
    driver.join(5)
    assert driver.error is None, driver.error
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{name} Failed" in run.stderr
    assert "label column 'category' missing" in run.stderr


def test_invalid_spec_exits_2_and_creates_nothing(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str], api: Api
) -> None:
    run = submit(
        cluster, "spam-invalid", ns, data, "--set", "hyperparameters.learningRate=-1", "--wait"
    )
    assert run.returncode == 2
    assert "hyperparameters.learningRate" in run.stderr
    assert api.ftj(ns, "spam-invalid") is None


def test_timeout_exits_3(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str], api: Api
) -> None:
    run = submit(cluster, "spam-slow", ns, data, "--wait", "--timeout", "3")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "timed out" in run.stderr


def test_cancel_then_wait_exits_4(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str], api: Api
) -> None:
    name = "spam-cancel"
    run = submit(cluster, name, ns, data)
    assert run.returncode == 0, run.stderr
    api.wait_phase(ns, name, "Running", timeout=90)
    cancel = ftjobs(cluster, "cancel", name, "-n", ns)
    assert cancel.returncode == 0 and "cancel requested" in cancel.stdout
    waited = ftjobs(cluster, "wait", name, "-n", ns, "--timeout", "90")
    assert waited.returncode == 4, waited.stdout + waited.stderr
    assert "cancelled" in waited.stderr


def test_generate_name_creates_a_new_job_each_time(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str]
) -> None:
    names = set()
    for _ in range(2):
        run = ftjobs(
            cluster, "submit", str(EXAMPLE), "--generate-name", "-n", ns, *sets(data),
            "--no-preflight",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        names.add(run.stdout.split()[0])
    assert len(names) == 2 and all(n.startswith("finetunejob.ftjobs.dev/sms-spam-") for n in names)


def test_preflight_reports_what_would_fail_before_creating(
    cluster: Any, ns: str, data: dict[str, str], api: Api
) -> None:
    ok = ftjobs(cluster, "preflight", str(EXAMPLE), "-n", ns, *sets(data), "-o", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    checks = {c["check"]: c for c in json.loads(ok.stdout)["checks"]}
    assert checks["secret"]["status"] == "ok"
    assert checks["storage dataset.train"]["status"] == "ok"
    assert checks["storage output"]["status"] == "ok"
    assert "Secret's credentials" in checks["storage output"]["message"]

    bad = ftjobs(
        cluster, "submit", str(EXAMPLE), "--name", "spam-preflight", "-n", ns,
        *sets(
            data,
            **{
                "storage.credentialsSecret": "no-such-secret",
                "dataset.train": f"s3://{data['bucket']}/sms/v9/missing.csv",
                "resources.gpusPerNode": "16",
                "resources.processesPerNode": "16",
                "hyperparameters.microBatchSize": "1",
            },
        ),
    )  # fmt: skip
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert f"Secret {ns}/no-such-secret does not exist" in bad.stderr
    # No readable Secret and no AWS_* here: the storage checks fail for want of credentials.
    assert "preflight storage dataset.train: s3://" in bad.stderr
    assert "your credentials (environment)" in bad.stderr
    assert "has 16 allocatable nvidia.com/gpu (most on any node: 8)" in bad.stderr
    assert api.ftj(ns, "spam-preflight") is None

    gpus = ftjobs(
        cluster, "preflight", str(EXAMPLE), "-n", ns, *sets(data),
        "--set", "resources.gpusPerNode=8", "--set", "resources.processesPerNode=8",
        "--set", "resources.nodes=2", "--set", "deepspeed.zeroStage=3",
        "--set", "hyperparameters.microBatchSize=1",
        "--params", "70e9", "--gpu-memory", "80Gi", "-o", "json",
    )  # fmt: skip
    checks = {c["check"]: c for c in json.loads(gpus.stdout)["checks"]}
    assert checks["gpus"]["status"] == "ok"
    # 70B on 16 GPUs, ZeRO-3: 18 x 70e9 / 16 + 4 x largest layer ~ 75 GiB + ~13 GiB > 80 GiB.
    assert checks["memory"]["status"] == "fail", checks["memory"]
    assert gpus.returncode == 2


def test_preflight_finds_a_missing_dataset_object(
    cluster: Any, ns: str, data: dict[str, str]
) -> None:
    missing = f"s3://{data['bucket']}/sms/v9/missing.csv"
    run = ftjobs(
        cluster, "preflight", str(EXAMPLE), "-n", ns, *sets(data, **{"dataset.train": missing}),
        "-o", "json",
    )  # fmt: skip
    assert run.returncode == 2
    check = {c["check"]: c for c in json.loads(run.stdout)["checks"]}["storage dataset.train"]
    assert check["status"] == "fail"
    assert check["message"] == f"{missing}: nothing there (the Secret's credentials)"


def test_logs_select_the_attempts_pods_by_rank(
    cluster: Any, ns: str, controller: ControllerProcess, data: dict[str, str], api: Api
) -> None:
    """kwok runs no kubelet, so the API server cannot fetch container logs: the command
    must find the pods (by attempt and rank) and report the server's error cleanly."""
    name = "spam-logs"
    run = submit(
        cluster, name, ns, data,
        "--set", "resources.nodes=2", "--set", "hyperparameters.microBatchSize=8",
        "--no-preflight",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    api.running_pods(ns, name, 1, 2)
    logs = ftjobs(cluster, "logs", name, "-n", ns, "--rank", "1", "--tail", "10")
    assert logs.returncode == 1
    assert f"error: logs of {name}-1-1-" in logs.stderr  # rank 1's pod of attempt 1
    assert "Traceback" not in logs.stderr
    missing = ftjobs(cluster, "logs", name, "-n", ns, "--rank", "5")
    assert missing.returncode == 1 and "no pods rank 5" in missing.stderr
    old = ftjobs(cluster, "logs", name, "-n", ns, "--attempt", "2")
    assert old.returncode == 1 and "no pods" in old.stderr


def test_preflight_reads_the_model_size_from_its_config_in_s3(
    cluster: Any, ns: str, data: dict[str, str], s3_client: Any
) -> None:
    config = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    s3_client.put_object(
        Bucket=data["bucket"], Key="models/gpt2/config.json", Body=json.dumps(config).encode()
    )
    run = ftjobs(
        cluster, "preflight", str(EXAMPLE), "-n", ns,
        *sets(data, **{"model.uri": f"s3://{data['bucket']}/models/gpt2/"}), "-o", "json",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    checks = {c["check"]: c for c in json.loads(run.stdout)["checks"]}
    assert checks["storage model"]["status"] == "ok"
    assert checks["memory"]["message"].startswith("~0.12B params, ZeRO-0, 2 process(es)")
