"""Pods that never start, on real kubelets: the FineTuneJob says why, then fails.

Nothing is patched here: the kubelet itself reports a missing credentials Secret
(CreateContainerConfigError) and an image no registry serves (ErrImagePull, then
ImagePullBackOff); the scheduler finds no real node with the CPU asked for
(Unschedulable). Each reason reaches the FineTuneJob's PodsWaiting condition within
60 s, and the job ends Failed with it after spec.startupTimeout. The controller runs
from this tree (the image-based controller is covered by test_finetunejob.py).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.nodes import BUSYBOX_REF, REAL_LABEL, REAL_TOLERATION, RealNodes

TIMEOUT_S = 30
ON_REAL = {"nodeSelector": {REAL_LABEL: "real"}, "tolerations": [REAL_TOLERATION]}


def waiting(api: Api, ns: str, name: str) -> dict[str, Any] | None:
    for cond in api.status(ns, name).get("conditions") or []:
        if cond["type"] == "PodsWaiting" and cond["status"] == "True":
            return dict(cond)
    return None


def test_kubelet_waiting_reasons_reach_the_finetunejob_and_fail_it(
    real_nodes: RealNodes, cluster: ControlPlane, namespace: str
) -> None:
    install_crd(cluster)
    api = Api(cluster.kubeconfig)
    lease = f"ftjobs-nodes-{uuid.uuid4().hex[:6]}"
    controller = ControllerProcess(
        cluster.kubeconfig, "--namespace", namespace, "--lease-name", lease
    ).start()
    try:
        cases: dict[str, tuple[dict[str, Any], tuple[str, ...], str]] = {
            "no-secret": (
                {
                    "resources": {"image": BUSYBOX_REF, "cpu": "100m", **ON_REAL},
                    "storage": {"output": "s3://outputs/runs", "credentialsSecret": "s3-gone"},
                },
                ("CreateContainerConfigError",),
                'secret "s3-gone" not found',
            ),
            "bad-image": (
                {"resources": {"image": "localhost/ftjobs/absent:1", "cpu": "100m", **ON_REAL}},
                ("ErrImagePull", "ImagePullBackOff"),
                "localhost/ftjobs/absent:1",
            ),
            "too-big": (
                {"resources": {"image": BUSYBOX_REF, "cpu": "64", **ON_REAL}},
                ("Unschedulable",),
                "Insufficient cpu",
            ),
        }
        created = {}
        for name, (spec, _, _) in cases.items():
            api.create_ftj(ftj_manifest(name, namespace, startupTimeout=f"{TIMEOUT_S}s", **spec))
            created[name] = time.monotonic()
        for name, (_, reasons, text) in cases.items():
            cond = wait_for(f"{name}: PodsWaiting", lambda n=name: waiting(api, namespace, n), 60)
            assert time.monotonic() - created[name] < 60
            assert cond["reason"] in reasons and text in cond["message"], cond
        for name, (_, reasons, _) in cases.items():
            status = api.wait_phase(namespace, name, "Failed", timeout=TIMEOUT_S + 60)
            failed = next(c for c in status["conditions"] if c["type"] == "Failed")
            assert failed["reason"] in reasons, failed
            assert f"did not start within spec.startupTimeout {TIMEOUT_S}s" in failed["message"]
        described = cluster.kubectl("describe", "ftj", "no-secret", "-n", namespace)
        assert "CreateContainerConfigError" in described.stdout, described.stdout
    finally:
        controller.stop()
