"""Pods on real kubelets: IPs on both nodes, pod DNS through CoreDNS, logs, PodSecurity.

One namespace with PodSecurity ``restricted`` enforced; a headless Service ``peers``
and one busybox pod per real node (``p0`` on real-0, ``p1`` on real-1), each with
the restricted securityContext the renderer gives trainer pods.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from tests.fixtures.controlplane import ControlPlane, wait_until
from tests.fixtures.nodes import BUSYBOX_REF, REAL_TOLERATION, RealNodes

RESTRICTED_POD_SC = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SC = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def peer_pod(name: str, node: str) -> dict[str, Any]:
    # httpd serves /etc, so GET /hostname answers with the pod's own hostname file
    script = f"echo hello-from-{name}; exec httpd -f -p 8080 -h /etc"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "peer"}},
        "spec": {
            "hostname": name,
            "subdomain": "peers",
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [REAL_TOLERATION],
            "terminationGracePeriodSeconds": 1,
            "securityContext": RESTRICTED_POD_SC,
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX_REF,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    "ports": [{"containerPort": 8080}],
                    "securityContext": RESTRICTED_CONTAINER_SC,
                }
            ],
        },
    }


def apply(cluster: ControlPlane, ns: str, obj: dict[str, Any]) -> Any:
    return cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def pod_json(cluster: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    r = cluster.kubectl("get", "pod", name, "-n", ns, "-o", "json")
    return dict(json.loads(r.stdout)) if r.returncode == 0 else {}


def ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def exec_in(cluster: ControlPlane, ns: str, pod: str, *cmd: str) -> Any:
    return cluster.kubectl("exec", "-n", ns, pod, "--", *cmd, timeout=60)


@pytest.fixture
def restricted_ns(cluster: ControlPlane, namespace: str) -> str:
    r = cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    assert r.returncode == 0, r.stderr
    return namespace


def test_restricted_namespace_rejects_a_privileged_pod(
    real_nodes: RealNodes, cluster: ControlPlane, restricted_ns: str
) -> None:
    """Negative control: the namespace really enforces restricted."""
    pod = peer_pod("loose", real_nodes.names[0])
    pod["spec"].pop("securityContext")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    r = apply(cluster, restricted_ns, pod)
    assert r.returncode != 0
    assert "violates PodSecurity" in r.stderr and "restricted" in r.stderr


def test_pods_on_both_nodes_resolve_and_reach_each_other(
    real_nodes: RealNodes, cluster: ControlPlane, restricted_ns: str
) -> None:
    ns = restricted_ns
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "peers"},
        "spec": {"clusterIP": "None", "selector": {"app": "peer"}, "ports": [{"port": 8080}]},
    }
    assert apply(cluster, ns, svc).returncode == 0
    nodes = real_nodes.names
    for i, node in enumerate(nodes[:2]):
        r = apply(cluster, ns, peer_pod(f"p{i}", node))
        assert r.returncode == 0, r.stderr

    pods = wait_until(
        "both peer pods Ready",
        lambda: (
            (ps := [pod_json(cluster, ns, f"p{i}") for i in range(2)])
            and all(map(ready, ps))
            and ps
        ),
        120,
        interval=1,
    )
    ips = [p["status"]["podIP"] for p in pods]
    assert [p["spec"]["nodeName"] for p in pods] == nodes[:2]
    assert len(set(ips)) == 2
    assert all(ipaddress.ip_address(ip) in real_nodes.net for ip in ips), ips

    # kubectl logs: apiserver -> kubelet -> container log file
    logs = cluster.kubectl("logs", "-n", ns, "p0")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "hello-from-p0"

    # the headless Service's pod name resolves through CoreDNS, across nodes
    fqdn = f"p1.peers.{ns}.svc.cluster.local"
    r = wait_until(
        f"{fqdn} resolves from p0",
        lambda: (
            (x := exec_in(cluster, ns, "p0", "nslookup", fqdn)).returncode == 0
            and ips[1] in x.stdout
            and x
        ),
        60,
        interval=1,
    )
    assert ips[1] in r.stdout
    r = exec_in(cluster, ns, "p0", "wget", "-qO-", f"http://{fqdn}:8080/hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "p1"
    # a name that does not exist does not resolve (the lookup can fail)
    r = exec_in(cluster, ns, "p0", "nslookup", f"p9.peers.{ns}.svc.cluster.local")
    assert r.returncode != 0

    # the kubelet enforced the securityContext: non-root, read-only root filesystem
    r = exec_in(cluster, ns, "p1", "id", "-u")
    assert r.stdout.strip() == "65532", r.stdout + r.stderr
    r = exec_in(cluster, ns, "p1", "touch", "/probe")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = exec_in(cluster, ns, "p1", "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status")
    assert "Seccomp:\t2" in r.stdout and "NoNewPrivs:\t1" in r.stdout, r.stdout
