"""How many API requests the controller spends on one FineTuneJob's first reconcile,
counted by the controller's own client hook: `Kube.counting` counts every HTTP request its
adapter sends to the real API server during one reconcile (the creates running on other
threads included), and the controller logs the count with the reconcile. kopf's watch
streams are not requests of a reconcile and are not counted.

Goal from issue #15: at most 8 requests per job (docs/benchmarks.md: where they go).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for

pytestmark = pytest.mark.integration

# What the first reconcile must write: six children (ServiceAccount, Role, RoleBinding,
# Service, NetworkPolicy, Job; the trainer's config rides in the Job), the status (attempt
# 1, Pending) and the Created event. It reads nothing (a new job has no children;
# `reconcile.reads_children`).
FIRST_RECONCILE_LIMIT = 8


def first_reconcile(proc: ControllerProcess, ftj: str) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in proc.log_records()
            if r.get("message") == "reconciled"
            and r.get("ftj") == ftj
            and "Created" in (r.get("events") or [])
        ),
        None,
    )


def test_first_reconcile_request_count(cluster: Any, namespace: str) -> None:
    install_crd(cluster)
    api = Api(cluster.kubeconfig)
    proc = ControllerProcess(
        cluster.kubeconfig, "--namespace", namespace, "--no-leader-elect", name="requests"
    ).start()
    try:
        api.create_ftj(ftj_manifest("count", namespace))
        record = wait_for(
            "the first reconcile", lambda: first_reconcile(proc, f"{namespace}/count"), 120
        )
    finally:
        proc.stop()
    # Negative control: the count is of this reconcile's requests, and it saw them all
    # (six creates, the status patch, the event), else it would be below 8.
    assert record["requests"] >= 8, record
    assert record["requests"] <= FIRST_RECONCILE_LIMIT, record
