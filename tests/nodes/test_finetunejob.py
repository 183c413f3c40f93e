"""A FineTuneJob on two real nodes, with the images built from the project's Dockerfile.

The controller runs from the controller image, installed by the Helm chart onto
real-0; the FineTuneJob's two trainer pods (one per node: each asks for more than
half a node's CPU) find each other through the headless Service's DNS name,
train with DeepSpeed ZeRO-2 on CPU (gloo), read the base model and data from
versitygw and write the fine-tuned model back; the test loads it with
``from_pretrained``. ``ftjobs logs -f`` runs alongside and must show both ranks.

The namespace enforces the Pod Security Standard ``restricted`` (``submit`` labels it
before anything is created), so the controller and trainer pods are admitted only if they
comply, and the running trainer is checked from inside: non-root uid, read-only root
filesystem, no_new_privs, seccomp filter, no effective capabilities. Negative control: the
trainer's own pod template without ``runAsNonRoot`` is refused in that namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.constants import LABEL_JOB
from tests.e2e.harness import Api, ftj_manifest, install_crd
from tests.fixtures.controlplane import ControlPlane, ensure_binaries
from tests.fixtures.nodes import REAL_LABEL, REAL_TOLERATION, ProjectImages, RealNodes
from tests.training.tiny import make_tiny_model, tiny_dataset

PSS_ENFORCE = "pod-security.kubernetes.io/enforce"

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "ftjobs"
TASK = "sequence-classification"


def upload_dir(s3: Any, local: Path, bucket: str, prefix: str) -> None:
    for f in sorted(local.rglob("*")):
        if f.is_file():
            s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(local)}")


def helm_install_controller(
    cluster: ControlPlane, images: ProjectImages, namespace: str, s3_endpoint: str, release: str
) -> None:
    """The chart into ``namespace`` as ``release`` (its ClusterRoles carry the release
    name: one release name per test, or the second install finds the first's)."""
    repo, _, tag = images.controller.rpartition(":")
    values = {
        "image": {"repository": repo, "tag": tag, "pullPolicy": "IfNotPresent"},
        "watchNamespaces": [namespace],
        "leaderElection": {"enabled": False},
        "trainer": {"image": images.trainer},
        "storage": {"endpoint": s3_endpoint, "region": "us-east-1"},
        "nodeSelector": {"kubernetes.io/hostname": "real-0"},
        "tolerations": [REAL_TOLERATION],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
    }
    helm = str(ensure_binaries(("helm",))["helm"])
    r = subprocess.run(
        [helm, "install", release, str(CHART), "-n", namespace, "-f", "-", "--wait",
         "--timeout", "5m"],
        input=json.dumps(values), capture_output=True, text=True, env=cluster.env(),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def enforce_restricted(cluster: ControlPlane, namespace: str) -> None:
    r = cluster.kubectl("label", "namespace", namespace, f"{PSS_ENFORCE}=restricted")
    assert r.returncode == 0, r.stderr


# Run in the trainer container: what the kernel applies to it (not what the spec asks).
PROBE = """
import os
print("uid", os.getuid())
try:
    open("/probe", "w")
    print("rootfs writable")
except OSError as exc:
    print("rootfs", exc.strerror)
for line in open("/proc/self/status"):
    if line.startswith(("Seccomp:", "NoNewPrivs:", "CapEff:", "CapPrm:")):
        print(line.split()[0], line.split()[1])
"""


def assert_runs_restricted(cluster: ControlPlane, namespace: str, pod: dict[str, Any]) -> None:
    """The kubelet/runc applied the restricted settings to the running trainer."""
    name = pod["metadata"]["name"]
    r = cluster.kubectl("exec", "-n", namespace, name, "--", "python", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    seen = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
    assert seen["uid"] != "0", r.stdout
    assert seen["rootfs"] == "Read-only file system", r.stdout
    assert seen["NoNewPrivs:"] == "1", r.stdout  # allowPrivilegeEscalation: false
    assert seen["Seccomp:"] == "2", r.stdout  # a seccomp filter: RuntimeDefault
    assert int(seen["CapEff:"], 16) == 0 and int(seen["CapPrm:"], 16) == 0, r.stdout


def assert_template_needs_run_as_non_root(cluster: ControlPlane, namespace: str, name: str) -> None:
    """The trainer Job's own pod template, as a Pod: admitted as is, refused without
    runAsNonRoot (server-side dry run: PodSecurity admission runs, nothing is created)."""
    r = cluster.kubectl("get", "jobs", "-n", namespace, "-l", f"{LABEL_JOB}={name}", "-o", "json")
    assert r.returncode == 0, r.stderr
    template = json.loads(r.stdout)["items"][0]["spec"]["template"]

    def as_pod(spec: dict[str, Any], suffix: str) -> str:
        return json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-pss-{suffix}"},
             "spec": spec}
        )  # fmt: skip

    ok = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                         input=as_pod(template["spec"], "ok"))  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    loose = json.loads(json.dumps(template["spec"]))
    loose["securityContext"].pop("runAsNonRoot")
    for c in loose["containers"] + loose.get("initContainers", []):
        c.get("securityContext", {}).pop("runAsNonRoot", None)
    bad = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                          input=as_pod(loose, "loose"))  # fmt: skip
    assert bad.returncode != 0
    assert "violates PodSecurity" in bad.stderr and "runAsNonRoot" in bad.stderr, bad.stderr


class LogFollower:
    """``ftjobs logs -f`` in the background; lines kept with the time they arrived."""

    def __init__(self, cluster: ControlPlane, namespace: str, name: str) -> None:
        self.lines: list[tuple[float, str]] = []
        cmd = [sys.executable, "-c", "from ftjobs.cli.main import app; app()",
               "logs", name, "-n", namespace, "-f"]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cluster.env()
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(10)
        return "\n".join(line for _, line in self.lines)


def submit(
    cluster: ControlPlane,
    api: Api,
    nodes: RealNodes,
    images: ProjectImages,
    s3_server: Any,
    s3: Any,
    bucket: str,
    namespace: str,
    tmp_path: Path,
    name: str,
    *,
    max_steps: int,
    every: int,
) -> None:
    """Model + data into versitygw, the Secret, the Helm-installed controller, the job,
    in a namespace that enforces Pod Security ``restricted``."""
    enforce_restricted(cluster, namespace)
    install_crd(cluster)
    s3_endpoint = f"http://{nodes.gateway_ip}:{s3_server.endpoint_url.rsplit(':', 1)[1]}"
    upload_dir(s3, make_tiny_model(TASK, tmp_path / "model"), bucket, "base")
    s3.upload_file(str(tiny_dataset(TASK, tmp_path / "data", n=64)), bucket, "data/train.jsonl")
    cluster.kubectl(
        "create", "secret", "generic", "s3", "-n", namespace,
        f"--from-literal=AWS_ACCESS_KEY_ID={s3_server.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={s3_server.secret_key}",
        check=True,
    )  # fmt: skip
    helm_install_controller(cluster, images, namespace, s3_endpoint, f"ftjobs-{name}")
    api.create_ftj(
        ftj_manifest(
            name,
            namespace,
            model={"uri": f"s3://{bucket}/base/"},
            dataset={
                "train": f"s3://{bucket}/data/train.jsonl",
                "fields": {"text": "text", "label": "label"},
            },
            hyperparameters={
                "maxSteps": max_steps,
                "globalBatchSize": 8,
                "microBatchSize": 4,
                "learningRate": 1e-3,
            },
            deepspeed={"zeroStage": 2, "precision": "fp32"},
            # 1200m of a node's 2 CPUs: the two pods cannot share a node
            resources={
                "nodes": 2,
                "cpu": "1200m",
                "memory": "3Gi",
                "nodeSelector": {REAL_LABEL: "real"},
                "tolerations": [REAL_TOLERATION],
            },
            storage={"output": f"s3://{bucket}/runs", "credentialsSecret": "s3"},
            checkpointing={"everySteps": every},
            failurePolicy={"maxRestarts": 3, "backoffSeconds": 1, "maxBackoffSeconds": 2},
        )
    )


@pytest.mark.timeout(1800)
def test_two_node_finetunejob_on_real_nodes(
    real_nodes: RealNodes,
    project_images_on_nodes: ProjectImages,
    cluster: ControlPlane,
    s3_server: Any,
    s3_client: Any,
    bucket: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    name = "real"
    api = Api(cluster.kubeconfig)
    submit(cluster, api, real_nodes, project_images_on_nodes, s3_server, s3_client, bucket,
           namespace, tmp_path, name, max_steps=6, every=3)  # fmt: skip
    pods = api.running_pods(namespace, name, 1, 2, timeout=300)
    assert sorted(p["spec"]["nodeName"] for p in pods) == real_nodes.names[:2]
    ns_labels = api.kube.get("v1", "Namespace", None, namespace)["metadata"]["labels"]
    assert ns_labels[PSS_ENFORCE] == "restricted"
    assert_runs_restricted(cluster, namespace, pods[0])
    assert_template_needs_run_as_non_root(cluster, namespace, name)
    follower = LogFollower(cluster, namespace, name)
    try:
        status = api.wait_phase(namespace, name, "Succeeded", timeout=1200)
    finally:
        streamed = follower.stop()
    assert status["progress"]["step"] == 6, status
    # both ranks streamed (the CLI prefixes every line with its rank)
    assert "[rank 0]" in streamed and "[rank 1]" in streamed, streamed[-3000:]

    model_uri = status["outputModel"]
    prefix = model_uri[len(f"s3://{bucket}/") :].rstrip("/") + "/"
    local = tmp_path / "exported"
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert listing, f"nothing under {model_uri}"
    for obj in listing:
        target = local / obj["Key"][len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3_client.download_file(bucket, obj["Key"], str(target))
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(local)
    assert model.num_labels == 2
