"""Helpers shared by the controller's integration, chaos and end-to-end tests.

The controller runs as a real subprocess (`python -m ftjobs.controller`) against the
local control plane of tests/fixtures/plugin.py, exactly as it runs in a cluster; tests
talk to the API server through the adapter (`ftjobs.k8s.Kube`) and kubectl.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ftjobs.api.constants import API_VERSION, CRD_NAME, KIND, LABEL_JOB
from ftjobs.k8s import Kube
from ftjobs.render.config import stored_config

REPO = Path(__file__).resolve().parents[2]
# The generated CRD; FTJOBS_CRD points the controller tests at another file (a CRD being
# worked on) without touching the committed one.
CRD = Path(
    os.environ.get("FTJOBS_CRD") or REPO / "manifests" / "crd" / "finetunejobs.ftjobs.dev.yaml"
)
# The admission policy that keeps the shared trainer identity to its own FineTuneJob, as
# the chart and manifests/base ship it: every controller test runs under it.
TRAINER_POLICY = REPO / "manifests" / "base" / "trainer-policy.yaml"
T = TypeVar("T")


def kubectl(cluster: Any, *args: str, check: bool = True) -> str:
    """kubectl through the fixture; stdout (raises with the output when check fails)."""
    try:
        result = cluster.kubectl(*args)
    except subprocess.CalledProcessError as exc:
        result = exc
    out = _text(result.stdout) + _text(result.stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {out}")
    return _text(result.stdout) if result.returncode == 0 else out


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def install_crd(cluster: Any) -> None:
    """The CRD (Established) and the trainer admission policy, as a cluster install has."""
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(TRAINER_POLICY))
    # Polled, not `kubectl wait`: right after the apply the CRD can have no status yet,
    # and `kubectl wait` fails on that ("conditions accessor error") instead of waiting.
    established = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    wait_for(
        f"crd/{CRD_NAME} Established",
        lambda: (
            kubectl(cluster, "get", f"crd/{CRD_NAME}", "-o", established, check=False) == "True"
        ),
        timeout=60,
    )


def service_account_token(
    cluster: Any, namespace: str, account: str, pod: dict[str, Any] | None = None
) -> str:
    """A TokenRequest token of ServiceAccount `namespace/account`. With `pod`, bound to that
    pod (name and uid) as the kubelet's projected token is: the API server then puts the
    pod's name into the user's extra `authentication.kubernetes.io/pod-name`, which the
    trainer admission policy checks. Without, a token of no pod (`kubectl create token`)."""
    args = ["create", "token", account, "-n", namespace, "--duration=1h"]
    if pod is not None:
        meta = pod["metadata"]
        args += [
            "--bound-object-kind=Pod",
            f"--bound-object-name={meta['name']}",
            f"--bound-object-uid={meta['uid']}",
        ]
    return kubectl(cluster, *args).strip()


def token_kubeconfig(cluster: Any, token: str, path: Path, namespace: str = "") -> Path:
    """A kubeconfig for the cluster that authenticates with `token` and nothing else."""
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context: dict[str, str] = {"cluster": "c", "user": "token"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": context}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(
    what: str, fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25
) -> T:
    """Poll `fn` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def controller_requests(port: int) -> Counter[str] | None:
    """The controller's API requests so far by "VERB resource" (its /metrics counter
    `ftjobs_api_requests_total`), or None while /metrics does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("ftjobs_api_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            kind = f"{labels.get('verb')} {labels.get('resource')}"
            counts[kind] += float(line.rsplit(" ", 1)[1])
    return counts


def ftj_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A small valid FineTuneJob (1 CPU node) with `spec` merged over it."""
    base: dict[str, Any] = {
        "task": "sequence-classification",
        "model": {"uri": "hf://prajjwal1/bert-tiny"},
        "dataset": {
            "train": "s3://data/train.jsonl",
            "fields": {"text": "text", "label": "label"},
        },
        "hyperparameters": {"maxSteps": 4, "globalBatchSize": 8, "microBatchSize": 4},
        "resources": {"nodes": 1, "cpu": "1", "memory": "1Gi"},
        "storage": {"output": "s3://outputs/runs"},
        "failurePolicy": {"maxRestarts": 2, "backoffSeconds": 1, "maxBackoffSeconds": 4},
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": base,
    }


class Api:
    """Reads and writes the tests need, over the adapter."""

    def __init__(self, kubeconfig: str) -> None:
        self.kube = Kube.connect(kubeconfig)

    def create_ftj(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return self.kube.create(manifest)

    def ftj(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get_finetunejob(namespace, name)

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.ftj(namespace, name) or {}
        return obj.get("status") or {}

    def phase(self, namespace: str, name: str) -> str | None:
        return self.status(namespace, name).get("phase")

    def wait_phase(
        self, namespace: str, name: str, *phases: str, timeout: float = 60
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status(namespace, name)
            return status if status.get("phase") in phases else None

        return wait_for(f"{namespace}/{name} in {phases}", check, timeout)

    def jobs(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.kube.list("batch/v1", "Job", namespace, f"{LABEL_JOB}={name}")

    def trainer_config(self, namespace: str, job_name: str) -> dict[str, Any]:
        """The config an attempt's Job carries: its pods' job.json (a pod annotation)."""
        job = self.kube.get("batch/v1", "Job", namespace, job_name)
        return dict(json.loads(stored_config(job)))

    def pods(self, namespace: str, name: str, attempt: int | None = None) -> list[dict[str, Any]]:
        selector = f"{LABEL_JOB}={name}"
        if attempt is not None:
            selector += f",ftjobs.dev/attempt={attempt}"
        return self.kube.list("v1", "Pod", namespace, selector)

    def running_pods(
        self, namespace: str, name: str, attempt: int, count: int, timeout: float = 120
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            pods = [
                p
                for p in self.pods(namespace, name, attempt)
                if (p.get("status") or {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")
            ]
            return pods if len(pods) >= count else None

        return wait_for(
            f"{count} running pods of {namespace}/{name} attempt {attempt}", check, timeout
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.kube.list("v1", "Event", namespace)
            if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == KIND
        ]


class ControllerProcess:
    """`python -m ftjobs.controller` as a subprocess, its output in a log file."""

    def __init__(
        self,
        kubeconfig: str,
        *args: str,
        name: str = "controller",
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.args = list(args)
        self.env = env or {}
        self.log_path = Path(tempfile.mkdtemp(prefix=f"ftjobs-{name}-")) / "controller.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ftjobs.controller",
                "--kubeconfig",
                self.kubeconfig,
                "--metrics-port",
                "0",
                "--health-port",
                "0",
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        return self

    def kill(self) -> None:
        """kill -9: no cleanup, no lease release."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def serve_controller(cluster: Any, lease_prefix: str, name: str = "controller") -> Iterator[Any]:
    """Body of a module fixture: one leading controller on `cluster` (fast lease, 10 s
    resync) for the module's tests; fails the module if it died meanwhile."""
    proc = ControllerProcess(
        cluster.kubeconfig,
        "--all-namespaces",
        "--lease-namespace",
        "default",
        "--lease-name",
        f"{lease_prefix}-{uuid.uuid4().hex[:6]}",
        "--lease-duration",
        "4",
        "--lease-renew",
        "1",
        "--resync-seconds",
        "10",
        name=name,
    ).start()
    wait_for("the controller to lead", lambda: '"leading"' in proc.logs(), 60)
    yield proc
    alive = proc.alive()
    proc.stop()
    assert alive, f"the controller died during the tests:\n{proc.logs()[-4000:]}"
