"""Faults on real nodes: a killed trainer container and a deleted trainer pod resume.

SIGKILL of one trainer container (exit 137, through its node's containerd) and the
deletion of a pod (the kubelet sends SIGTERM; the trainer checkpoints inside the grace
period and exits 75) are retriable: each new attempt resumes from LATEST and the job
ends Succeeded with the model. The controller runs from the Helm-installed image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Api, wait_for
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.nodes import ProjectImages, RealNodes
from tests.nodes.test_finetunejob import submit


def trainer_pod(cluster: ControlPlane, namespace: str, name: str, attempt: int, index: int) -> Any:
    r = cluster.kubectl(
        "get", "pods", "-n", namespace, "-o", "json",
        "-l", f"batch.kubernetes.io/job-name={name}-{attempt}",
    )  # fmt: skip
    for p in json.loads(r.stdout)["items"]:
        ann = p["metadata"].get("annotations", {})
        if ann.get("batch.kubernetes.io/job-completion-index") == str(index):
            return p
    return None


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.timeout(1800)
def test_killed_and_deleted_trainers_resume_from_latest(
    real_nodes: RealNodes,
    project_images_on_nodes: ProjectImages,
    cluster: ControlPlane,
    s3_server: Any,
    s3_client: Any,
    bucket: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    """SIGKILL of one trainer container (exit 137) and a pod deletion (kubelet SIGTERM:
    checkpoint inside the grace period, exit 75) are retriable; each new attempt resumes
    from LATEST, and the job still ends Succeeded."""
    name = "chaos"
    api = Api(cluster.kubeconfig)
    submit(cluster, api, real_nodes, project_images_on_nodes, s3_server, s3_client, bucket,
           namespace, tmp_path, name, max_steps=300, every=10)  # fmt: skip

    def status() -> dict[str, Any]:
        return api.status(namespace, name)

    # 1. a checkpoint exists; SIGKILL rank 1's container through its node's containerd
    wait_for("first checkpoint", lambda: (status().get("latestCheckpoint") or {}).get("step"), 600)
    pod = trainer_pod(cluster, namespace, name, 1, 1)
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("//", 1)[1]
    node = real_nodes.names.index(pod["spec"]["nodeName"])
    real_nodes.ctr(node, "tasks", "kill", "-s", "SIGKILL", cid)
    wait_for("attempt 2 running", lambda: status().get("attempt") == 2, 300)

    # 2. attempt 2 checkpoints again; delete rank 0's pod: the kubelet sends SIGTERM
    first = int(status()["latestCheckpoint"]["step"])
    wait_for(
        "a checkpoint of attempt 2",
        lambda: int((status().get("latestCheckpoint") or {}).get("step", 0)) > first,
        600,
    )
    pod = trainer_pod(cluster, namespace, name, 2, 0)
    pod_name = pod["metadata"]["name"]
    before = int(status()["latestCheckpoint"]["step"])
    cluster.kubectl("delete", "pod", "-n", namespace, pod_name, "--wait=false", check=True)

    def exit_code() -> int | None:
        r = cluster.kubectl("get", "pod", "-n", namespace, pod_name, "-o", "json")
        if r.returncode != 0:
            return None
        for cs in json.loads(r.stdout)["status"].get("containerStatuses", []):
            term = (cs.get("state") or {}).get("terminated")
            if term:
                return int(term["exitCode"])
        return None

    code = wait_for("the deleted trainer's exit code", exit_code, 120, interval=0.2)
    assert code == 75, f"SIGTERM'd trainer exited {code}"
    final = api.wait_phase(namespace, name, "Succeeded", timeout=900)
    assert final["restarts"] == 2, final
    # the SIGTERM checkpoint was taken inside the grace period, after the last periodic one
    summary = read_json(s3_client, bucket, f"runs/{namespace}/{name}/summary.json")
    assert summary["attempt"] == 3 and summary["resumedFromStep"] >= before, summary
