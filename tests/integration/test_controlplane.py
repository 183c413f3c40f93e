"""The local control plane is real: Job controller, scheduler, GC, admission, kwok nodes."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from tests.fixtures.controlplane import GPU_RESOURCE, ControlPlane, wait_until

pytestmark = pytest.mark.integration

IMAGE = "registry.invalid/ftjobs/test:0"  # never pulled: kwok runs no containers


def kget(cluster: ControlPlane, *args: str) -> dict[str, Any]:
    r = cluster.kubectl("get", *args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def apply(cluster: ControlPlane, namespace: str, obj: dict[str, Any]) -> None:
    r = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
    assert r.returncode == 0, r.stderr


def job_pods(cluster: ControlPlane, namespace: str, job: str) -> list[dict[str, Any]]:
    return kget(cluster, "pods", "-n", namespace, "-l", f"batch.kubernetes.io/job-name={job}")[
        "items"
    ]


def running_pods(cluster: ControlPlane, namespace: str, job: str, n: int) -> list[dict[str, Any]]:
    def ok() -> list[dict[str, Any]] | None:
        pods = [
            p for p in job_pods(cluster, namespace, job) if p["status"].get("phase") == "Running"
        ]
        return pods if len(pods) >= n else None

    return wait_until(f"{n} running pods of job {job}", ok, 60, interval=0.3)


def job_condition(
    cluster: ControlPlane, namespace: str, job: str, ctype: str, timeout: float = 60
) -> dict[str, Any]:
    def cond() -> dict[str, Any] | None:
        j = kget(cluster, "job", job, "-n", namespace)
        for c in j.get("status", {}).get("conditions", []):
            if c["type"] == ctype and c["status"] == "True":
                return c
        return None

    return wait_until(f"job {job} condition {ctype}", cond, timeout, interval=0.3)


def job(name: str, *, completions: int = 1, parallelism: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completions": completions,
            "parallelism": parallelism,
            "backoffLimit": 3,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE}],
                }
            },
            **spec,
        },
    }


def test_version_and_nodes(cluster: ControlPlane) -> None:
    v = json.loads(cluster.kubectl("version", "-o", "json", check=True).stdout)
    assert v["serverVersion"]["gitVersion"].startswith("v1.36.")
    assert v["serverVersion"]["minor"] == "36"
    nodes = kget(cluster, "nodes")["items"]
    gpu = [n for n in nodes if n["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"]
    cpu = [n for n in nodes if n not in gpu]
    assert len(cpu) >= 2 and len(gpu) >= 2
    for n in gpu:
        assert n["status"]["allocatable"][GPU_RESOURCE] == "8"
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in n["spec"][
            "taints"
        ]
    for n in nodes:
        ready = {c["type"]: c["status"] for c in n["status"]["conditions"]}["Ready"]
        assert ready == "True", n["metadata"]["name"]


def test_indexed_job_runs_on_kwok_nodes_and_completes(
    cluster: ControlPlane, namespace: str, kwok_pod_exit: Any, k8s_api: Any
) -> None:
    apply(
        cluster, namespace, job("indexed", completions=2, parallelism=2, completionMode="Indexed")
    )
    pods = running_pods(cluster, namespace, "indexed", 2)
    assert len(pods) == 2
    node_names = {n["metadata"]["name"] for n in kget(cluster, "nodes")["items"]}
    indexes = set()
    for p in pods:
        assert p["spec"]["nodeName"] in node_names  # bound by kube-scheduler
        assert p["status"]["containerStatuses"][0]["state"].get("running")
        indexes.add(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
    assert indexes == {"0", "1"}

    for p in pods:
        done = kwok_pod_exit(p["metadata"]["name"], namespace, 0)
        assert done["status"]["phase"] == "Succeeded"
        assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

    job_condition(cluster, namespace, "indexed", "Complete")
    # the Python client sees the same thing
    from kubernetes import client

    j = client.BatchV1Api(k8s_api).read_namespaced_job("indexed", namespace)
    assert j.status.succeeded == 2
    assert j.status.completed_indexes == "0,1"


def test_pod_failure_policy_fail_job_on_exit_code_75(
    cluster: ControlPlane, namespace: str, kwok_pod_exit: Any
) -> None:
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [75]},
            }
        ]
    }
    apply(cluster, namespace, job("fails", podFailurePolicy=policy))
    (pod,) = running_pods(cluster, namespace, "fails", 1)
    done = kwok_pod_exit(pod["metadata"]["name"], namespace, 75, "checkpoint upload failed")
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 75
    assert term["message"] == "checkpoint upload failed"
    assert done["status"]["phase"] == "Failed"

    cond = job_condition(cluster, namespace, "fails", "Failed")
    assert cond["reason"] == "PodFailurePolicy"
    assert "75" in cond["message"]
    # FailJob: no retry pod was created despite backoffLimit 3
    assert len(job_pods(cluster, namespace, "fails")) == 1


def test_pod_failure_policy_ignore_retries_without_counting(
    cluster: ControlPlane, namespace: str, kwok_pod_exit: Any
) -> None:
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [75]}}]}
    apply(cluster, namespace, job("ignores", backoffLimit=0, podFailurePolicy=policy))
    (first,) = running_pods(cluster, namespace, "ignores", 1)
    kwok_pod_exit(first["metadata"]["name"], namespace, 75)

    def replacement() -> dict[str, Any] | None:
        for p in job_pods(cluster, namespace, "ignores"):
            if (
                p["metadata"]["uid"] != first["metadata"]["uid"]
                and p["status"].get("phase") == "Running"
            ):
                return p
        return None

    second = wait_until("replacement pod", replacement, 60, interval=0.3)
    j = kget(cluster, "job", "ignores", "-n", namespace)
    assert not j["status"].get("failed"), (
        "an Ignore'd failure must not count against backoffLimit 0"
    )
    # an exit code the policy does not match counts: backoffLimit 0 fails the Job
    kwok_pod_exit(second["metadata"]["name"], namespace, 1, "boom")
    cond = job_condition(cluster, namespace, "ignores", "Failed")
    assert cond["reason"] == "BackoffLimitExceeded"


def test_pod_template_annotation_makes_pods_exit_by_themselves(
    cluster: ControlPlane, namespace: str
) -> None:
    spec = job("auto", completions=2, parallelism=2)
    spec["spec"]["template"]["metadata"] = {
        "annotations": {"ftjobs.dev/test-exit-code": "0", "ftjobs.dev/test-exit-delay": "500ms"}
    }
    apply(cluster, namespace, spec)
    job_condition(cluster, namespace, "auto", "Complete")


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_deleting_a_job_garbage_collects_its_pods(
    cluster: ControlPlane, namespace: str, propagation: str
) -> None:
    apply(cluster, namespace, job("gc", completions=2, parallelism=2))
    pods = running_pods(cluster, namespace, "gc", 2)
    for p in pods:
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref["kind"] == "Job" and ref["name"] == "gc" and ref["controller"] is True

    r = cluster.kubectl(
        "delete", "job", "gc", "-n", namespace, f"--cascade={propagation.lower()}", "--wait=false"
    )
    assert r.returncode == 0, r.stderr

    def gone() -> bool:
        left = kget(cluster, "pods", "-n", namespace)["items"]
        jobs = kget(cluster, "jobs", "-n", namespace)["items"]
        return not left and not jobs

    wait_until(f"job and pods deleted ({propagation})", gone, 90, interval=0.5)


def test_gpu_pods_land_on_tainted_gpu_nodes_only_with_toleration(
    cluster: ControlPlane, namespace: str
) -> None:
    def pod(name: str, tolerate: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": IMAGE, "resources": {"limits": {GPU_RESOURCE: "8"}}}
            ],
        }
        if tolerate:
            spec["tolerations"] = [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}

    apply(cluster, namespace, pod("gpu-ok", True))
    apply(cluster, namespace, pod("gpu-no-toleration", False))
    ok = wait_until(
        "gpu pod running",
        lambda: (
            (p := kget(cluster, "pod", "gpu-ok", "-n", namespace))["status"].get("phase")
            == "Running"
            and p
        ),
        60,
        interval=0.3,
    )
    node = kget(cluster, "node", ok["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"

    def unschedulable() -> bool:
        p = kget(cluster, "pod", "gpu-no-toleration", "-n", namespace)
        return any(
            c["type"] == "PodScheduled"
            and c["status"] == "False"
            and c.get("reason") == "Unschedulable"
            for c in p["status"].get("conditions", [])
        )

    wait_until("untolerated gpu pod unschedulable", unschedulable, 60, interval=0.3)


def test_restricted_pod_security_refuses_privileged_pod(
    cluster: ControlPlane, namespace: str
) -> None:
    r = cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "--overwrite",
    )
    assert r.returncode == 0, r.stderr
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "main", "image": IMAGE, "securityContext": {"privileged": True}}
            ]
        },
    }
    r = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(privileged))
    assert r.returncode != 0
    assert "violates PodSecurity" in r.stderr and "restricted" in r.stderr, r.stderr

    compliant = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "restricted-ok"},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    apply(cluster, namespace, compliant)  # same namespace, admitted: the refusal was PodSecurity's


def test_service_account_tokens_are_issued_and_accepted(
    cluster: ControlPlane, namespace: str
) -> None:
    r = cluster.kubectl("create", "token", "default", "-n", namespace, "--duration=10m")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()

    def as_token(*args: str) -> subprocess.CompletedProcess[str]:
        """kubectl with the token as the only credential (no kubeconfig user)."""
        return subprocess.run(
            [
                cluster.bin_dir["kubectl"],
                "--server",
                cluster.server,
                "--certificate-authority",
                str(cluster.pki / "ca.crt"),
                "--token",
                token,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    who = as_token("auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    user = json.loads(who.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:default"
    # RBAC is on: the default SA may not list pods
    can = as_token("auth", "can-i", "list", "pods", "-n", namespace)
    assert can.stdout.strip() == "no"


def test_components_listen_on_loopback_only(cluster: ControlPlane, s3_server: Any) -> None:
    import psutil

    pids = dict(cluster.pids())
    if s3_server.pid is not None:
        pids["versitygw"] = s3_server.pid
    assert pids, "needs a control plane started by this session or by hack/cluster.py (pid files)"
    expected_listeners = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    assert expected_listeners <= set(pids), pids
    by_pid = {pid: name for name, pid in pids.items()}
    seen: dict[str, list[str]] = {name: [] for name in pids}
    bad = []
    for c in psutil.net_connections(kind="inet"):
        if c.pid not in by_pid:
            continue
        listening = c.status == psutil.CONN_LISTEN or (
            c.type == 2 and not c.raddr
        )  # TCP listen / bound UDP
        if not listening:
            continue
        addr = f"{c.laddr.ip}:{c.laddr.port}"
        seen[by_pid[c.pid]].append(addr)
        if c.laddr.ip != "127.0.0.1":
            bad.append(f"{by_pid[c.pid]} listens on {addr}")
    assert not bad, bad
    for name in expected_listeners | ({"versitygw"} & set(pids)):
        assert seen[name], f"{name} has no listening socket? {seen}"

    # cross-check with ss, as an operator would
    ss = subprocess.run(["ss", "-H", "-ltnup"], capture_output=True, text=True, check=True).stdout
    for line in ss.splitlines():
        if any(f"pid={pid}," in line for pid in by_pid):
            local = line.split()[4]
            assert local.startswith("127.0.0.1:"), line


def test_watch_and_server_side_apply_conflicts(
    cluster: ControlPlane, namespace: str, k8s_api: Any
) -> None:
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(k8s_api)
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "1"})
    created = core.create_namespaced_config_map(namespace, cm)
    stale_rv = created.metadata.resource_version
    core.patch_namespaced_config_map("cm", namespace, {"data": {"a": "2"}})
    stale = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cm", resource_version=stale_rv), data={"a": "3"}
    )
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("cm", namespace, stale)
    assert exc.value.status == 409

    w = watch.Watch()
    t0 = time.monotonic()
    events = []
    for ev in w.stream(
        core.list_namespaced_config_map, namespace, resource_version=stale_rv, timeout_seconds=10
    ):
        events.append((ev["type"], ev["object"].data))
        if ev["object"].data == {"a": "2"}:
            w.stop()
    assert ("MODIFIED", {"a": "2"}) in events and time.monotonic() - t0 < 10

    # server-side apply: a second field manager conflicts on the same field
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa"},
        "data": {"k": "one"},
    }
    r = cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=first",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(body),
    )
    assert r.returncode == 0, r.stderr
    body["data"]["k"] = "two"
    r = cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=second",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(body),
    )
    assert r.returncode != 0 and "conflict" in r.stderr.lower(), r.stderr
