"""Pods stuck before starting, on the real control plane: the FineTuneJob says why, then fails.

A missing credentials Secret (CreateContainerConfigError) and an image that cannot be
pulled (ImagePullBackOff) are what a kubelet reports on the pod; kwok has no kubelet, so
the pods run a held image (`HOLD_IMAGE`: kwok leaves them alone once scheduled) and the
test patches their status to that waiting state. Unschedulable is real: the scheduler
finds no node with the requested CPU. Each shows in the FineTuneJob's PodsWaiting
condition right after the pod changes (the controller watches trainer pods), then ends
the job Failed with that reason after spec.startupTimeout; `kubectl describe ftj` and
`ftjobs status` show it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for
from tests.fixtures.controlplane import HOLD_IMAGE

FTJOBS = str(Path(sys.executable).parent / "ftjobs")
TIMEOUT_S = 20


def _waiting_condition(api: Api, ns: str, name: str) -> dict[str, Any] | None:
    for cond in api.status(ns, name).get("conditions") or []:
        if cond["type"] == "PodsWaiting" and cond["status"] == "True":
            return dict(cond)
    return None


def _hold_pod(api: Api, ns: str, name: str) -> dict[str, Any]:
    def scheduled() -> dict[str, Any] | None:
        pods = [p for p in api.pods(ns, name, 1) if (p.get("spec") or {}).get("nodeName")]
        return pods[0] if pods else None

    return wait_for(f"{name}: a scheduled pod", scheduled, 60)


def _patch_waiting(cluster: Any, pod: dict[str, Any], reason: str, message: str) -> None:
    container = pod["spec"]["containers"][0]
    status = {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ],
    }
    r = cluster.kubectl(
        "patch", "pod", pod["metadata"]["name"], "-n", pod["metadata"]["namespace"],
        "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_stuck_pods_show_their_reason_and_fail_after_the_startup_timeout(
    cluster: Any, namespace: str
) -> None:
    install_crd(cluster)
    api = Api(cluster.kubeconfig)
    # A resync far beyond the test: only the pod watch can bring the news in time.
    lease = f"ftjobs-startup-{uuid.uuid4().hex[:6]}"
    args = ("--namespace", namespace, "--lease-name", lease, "--resync-seconds", "300")
    controller = ControllerProcess(cluster.kubeconfig, *args).start()
    try:
        _stuck_pods(cluster, api, namespace)
    finally:
        controller.stop()


def _stuck_pods(cluster: Any, api: Api, namespace: str) -> None:
    held = {"image": HOLD_IMAGE}
    cases = {
        "no-secret": (
            "CreateContainerConfigError",
            'secret "s3-credentials-missing" not found',
        ),
        "bad-image": ("ImagePullBackOff", 'Back-off pulling image "registry.invalid/x:1"'),
    }
    for name in cases:
        api.create_ftj(
            ftj_manifest(name, namespace, resources=held, startupTimeout=f"{TIMEOUT_S}s")
        )
    api.create_ftj(
        ftj_manifest(
            "too-big", namespace, resources={"cpu": "5000"}, startupTimeout=f"{TIMEOUT_S}s"
        )
    )
    for name, (reason, message) in cases.items():
        pod = _hold_pod(api, namespace, name)
        time.sleep(1)  # the controller has seen the pod as merely pending
        patched = time.monotonic()
        _patch_waiting(cluster, pod, reason, message)
        cond = wait_for(
            f"{name}: PodsWaiting", lambda n=name: _waiting_condition(api, namespace, n), 30
        )
        # One reconcile after the pod changed, not a resync (300 s) later.
        assert time.monotonic() - patched < 15
        assert cond["reason"] == reason and message in cond["message"], cond
        status = api.status(namespace, name)
        assert status["phase"] == "Pending" and message in status["message"], status
        assert f"spec.startupTimeout {TIMEOUT_S}s" in status["message"]
    unschedulable = wait_for(
        "too-big: PodsWaiting", lambda: _waiting_condition(api, namespace, "too-big"), 60
    )
    assert unschedulable["reason"] == "Unschedulable"
    assert "Insufficient cpu" in unschedulable["message"], unschedulable

    expected = {name: reason for name, (reason, _) in cases.items()} | {"too-big": "Unschedulable"}
    for name, reason in expected.items():
        status = api.wait_phase(namespace, name, "Failed", timeout=TIMEOUT_S + 60)
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["reason"] == reason, failed
        assert f"did not start within spec.startupTimeout {TIMEOUT_S}s" in failed["message"]
        assert reason in [e["reason"] for e in api.events(namespace, name)]

    described = cluster.kubectl("describe", "ftj", "no-secret", "-n", namespace)
    assert described.returncode == 0, described.stderr
    assert "CreateContainerConfigError" in described.stdout
    assert "s3-credentials-missing" in described.stdout
    shown = subprocess.run(
        [FTJOBS, "status", "no-secret", "-n", namespace],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "KUBECONFIG": cluster.kubeconfig,
             "COLUMNS": "400"},
    )  # fmt: skip
    assert shown.returncode != 0 or "Failed" in shown.stdout, shown
    assert "CreateContainerConfigError" in shown.stdout, shown.stdout
    assert "s3-credentials-missing" in shown.stdout, shown.stdout
