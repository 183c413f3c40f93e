"""How many API requests the controller spends on one FineTuneJob's first reconcile,
counted by the controller's own client hook: `Kube.counting` counts every HTTP request its
adapter sends to the real API server during one reconcile (the creates running on other
threads included), and the controller logs the count with the reconcile. kopf's watch
streams are not requests of a reconcile and are not counted.

Goal from issue #15: at most 8 requests per job (docs/benchmarks.md: where they go, and
the count through Running under a burst).
"""

from __future__ import annotations

from typing import Any

import pytest

from ftjobs.api.job import FineTuneJob
from ftjobs.render import is_namespace_identity, render_job
from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for

pytestmark = pytest.mark.integration

# Goal from issue #15: at most 8 requests per job.
PER_JOB_LIMIT = 8


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


def expected_writes(manifest: dict[str, Any], namespace: str) -> tuple[int, int]:
    """What a first reconcile must write, from render itself: the job's own children, the
    status (attempt 1, Pending) and the Created event; and the namespace's shared trainer
    identity, once per namespace. It reads nothing (`reconcile.reads_children`)."""
    job = FineTuneJob.model_validate(manifest)
    objects = render_job(job, namespace=namespace, name="x", uid="u", attempt=1, resume=False)
    identity = sum(1 for o in objects if is_namespace_identity(o))
    return len(objects) - identity + 2, identity


def test_first_reconcile_request_count(cluster: Any, namespace: str) -> None:
    install_crd(cluster)
    api = Api(cluster.kubeconfig)
    proc = ControllerProcess(
        cluster.kubeconfig, "--namespace", namespace, "--no-leader-elect", name="requests"
    ).start()
    try:
        records = []
        for name in ("first", "second"):
            api.create_ftj(ftj_manifest(name, namespace))
            records.append(
                wait_for(
                    f"the first reconcile of {name}",
                    lambda n=name: first_reconcile(proc, f"{namespace}/{n}"),  # type: ignore[misc]
                    120,
                )
            )
    finally:
        proc.stop()
    own, identity = expected_writes(ftj_manifest("x", namespace), namespace)
    assert identity == 3  # ServiceAccount, Role, RoleBinding
    # Exact counts, so the check also fails when a request goes uncounted (a create on
    # another thread, the report in its own pool): the first job of a namespace makes the
    # shared identity too, the second does not.
    assert records[0]["requests"] == own + identity, records[0]
    assert records[1]["requests"] == own, records[1]
    assert own <= PER_JOB_LIMIT, records[1]
