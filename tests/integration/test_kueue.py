"""FineTuneJobs under the real Kueue (built from the Go module proxy, started once per
session by the ``kueue`` fixture) on the kwok nodes of the test control plane.

Each test gets two team namespaces with a LocalQueue ``team`` on its own ClusterQueue
(in one cohort for the fair-sharing test), made from examples/kueue/queues.yaml with
the quota the test needs (``kueue_teams``). Kueue admits, holds back, reclaims and
preempts the attempts' Jobs for real; kwok stands in for the kubelets (a pod deleted
while running ends with exit 143, as a trainer does after its SIGTERM checkpoint; the
checkpoint within the grace period itself is tested on real DeepSpeed in
tests/training).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from ftjobs.api.constants import LABEL_KUEUE_JOB_UID, LABEL_KUEUE_QUEUE
from ftjobs.cli.main import app
from tests.e2e.harness import (
    Api,
    ControllerProcess,
    ftj_manifest,
    install_crd,
    kubectl,
    serve_controller,
    wait_for,
)
from tests.fixtures.kueue import Tenants

QUEUE_TIMEOUT = 90


@pytest.fixture(scope="module")
def api(cluster: Any) -> Api:
    install_crd(cluster)
    return Api(cluster.kubeconfig)


@pytest.fixture(scope="module")
def controller(cluster: Any, api: Api, kueue: Any) -> Iterator[ControllerProcess]:
    yield from serve_controller(cluster, "ftjobs-kueue", "kueue-controller")


def queued_job(name: str, ns: str, queue: str, **spec: Any) -> dict[str, Any]:
    return ftj_manifest(name, ns, queueName=queue, **spec)


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == ctype)


def workload_of(api: Api, ns: str, job_name: str) -> dict[str, Any] | None:
    job = api.kube.get_or_none("batch/v1", "Job", ns, job_name)
    if job is None:
        return None
    items = api.kube.list(
        "kueue.x-k8s.io/v1beta2", "Workload", ns, f"{LABEL_KUEUE_JOB_UID}={job['metadata']['uid']}"
    )
    return items[0] if items else None


def wl_condition(wl: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    conds = ((wl or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ctype), {})


def live_pods(api: Api, ns: str, name: str) -> list[dict[str, Any]]:
    return [p for p in api.pods(ns, name) if not p["metadata"].get("deletionTimestamp")]


def finish(cluster: Any, api: Api, ns: str, name: str, attempt: int, nodes: int = 1) -> None:
    for pod in api.running_pods(ns, name, attempt, nodes):
        cluster.pod_exit(pod["metadata"]["name"], ns, 0)
    api.wait_phase(ns, name, "Succeeded", timeout=QUEUE_TIMEOUT)


def resume_flag(api: Api, ns: str, name: str, attempt: int) -> bool:
    return bool(api.trainer_config(ns, f"{name}-{attempt}")["resume"])


def wait_kueue_reason(api: Api, ns: str, name: str) -> dict[str, Any]:
    """The status once its message carries Kueue's reason (a quota shortfall)."""

    def check() -> dict[str, Any] | None:
        st = api.status(ns, name)
        return st if "insufficient" in st.get("message", "") else None

    try:
        return wait_for(f"Kueue's reason in {name}'s status", check, QUEUE_TIMEOUT)
    except (AssertionError, TimeoutError) as exc:
        wl = workload_of(api, ns, f"{name}-1")
        raise AssertionError(
            f"{exc}\nstatus: {api.status(ns, name)}\nworkload: {(wl or {}).get('status')}"
        ) from exc


CPU = "cpu-nodes"


# --- admission --------------------------------------------------------------------------


def test_kueue_admits_the_attempt_job_onto_its_flavor(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "4"}, "gpu-nodes": {"nvidia.com/gpu": "8"}})
    api.create_ftj(queued_job("cpu", t.a, t.queue))
    api.create_ftj(
        queued_job(
            "gpu",
            t.a,
            t.queue,
            resources={"nodes": 1, "gpusPerNode": 8},
            hyperparameters={"maxSteps": 4, "globalBatchSize": 32, "microBatchSize": 4},
        )
    )
    for name, kind in (("cpu", "cpu"), ("gpu", "gpu")):
        status = api.wait_phase(t.a, name, "Running", timeout=QUEUE_TIMEOUT)
        assert condition(status, "Queued")["status"] == "False"
        assert condition(status, "Queued")["reason"] == "Admitted"
        wl = workload_of(api, t.a, f"{name}-1")
        assert wl_condition(wl, "Admitted").get("status") == "True"
        assert wl["status"]["admission"]["clusterQueue"] == t.cluster_queue("a")
        # Kueue's own mark on the pods: the flavor's node labels.
        (pod,) = api.running_pods(t.a, name, 1, 1)
        assert pod["spec"]["nodeSelector"]["ftjobs.dev/node-kind"] == kind
        assert pod["spec"]["nodeName"].startswith(f"kwok-{kind}-")


# --- quota wait, status, and the queue-wait time ------------------------------------------


def test_a_job_over_quota_stays_queued_with_kueues_message(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "1"}})
    api.create_ftj(queued_job("first", t.a, t.queue))
    api.wait_phase(t.a, "first", "Running", timeout=QUEUE_TIMEOUT)
    api.create_ftj(queued_job("second", t.a, t.queue))

    status = wait_kueue_reason(api, t.a, "second")
    assert status["phase"] == "Queued"
    queued = condition(status, "Queued")
    assert queued["status"] == "True" and queued["reason"] == "AwaitingAdmission"
    assert f"Kueue queue {t.queue}" in queued["message"]
    assert "insufficient unused quota for cpu in flavor cpu-nodes" in queued["message"]
    job = api.kube.get("batch/v1", "Job", t.a, "second-1")
    assert job["spec"]["suspend"] is True and job["metadata"]["labels"][LABEL_KUEUE_QUEUE]
    assert not api.pods(t.a, "second")

    table = kubectl(cluster, "get", "ftj", "-n", t.a, "second", "-o", "wide")
    assert "Queued" in table and t.queue in table
    out = ftjobs_cli("status", "second", "-n", t.a, kubeconfig=cluster.kubeconfig)
    assert "Queued" in out and "insufficient unused quota" in out and f"queue {t.queue}" in out

    # The first one finishes: its quota goes back and Kueue admits the second.
    finish(cluster, api, t.a, "first", 1)
    status = api.wait_phase(t.a, "second", "Running", timeout=QUEUE_TIMEOUT)
    assert condition(status, "Queued")["reason"] == "Admitted"
    assert status["restarts"] == 0 and status["attempt"] == 1


def ftjobs_cli(*args: str, kubeconfig: str) -> str:
    """The `ftjobs` CLI in-process (typer's runner), wide enough not to wrap messages."""
    result = CliRunner().invoke(
        app, [*args, "--kubeconfig", kubeconfig], env={**os.environ, "COLUMNS": "400"}
    )
    assert result.exit_code == 0, result.output
    return result.output


# --- gang admission ---------------------------------------------------------------------


def test_gang_quota_for_half_the_pods_admits_none_of_them(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "2"}})
    spec = {
        "resources": {"nodes": 4, "cpu": "1", "memory": "1Gi"},
        "hyperparameters": {"maxSteps": 4, "globalBatchSize": 16, "microBatchSize": 4},
    }
    api.create_ftj(queued_job("gang", t.a, t.queue, **spec))
    message = wait_kueue_reason(api, t.a, "gang")["message"]
    assert "insufficient quota for cpu in flavor cpu-nodes" in message
    assert "> maximum capacity (2)" in message
    time.sleep(3)  # Kueue has decided; a partial start would show by now
    assert api.phase(t.a, "gang") == "Queued"
    assert not api.pods(t.a, "gang"), "no pod of a half-fitting gang may start"
    wl = workload_of(api, t.a, "gang-1")
    assert wl["spec"]["podSets"][0]["count"] == 4
    assert wl_condition(wl, "QuotaReserved").get("status") == "False"
    # Control: the same job with quota for all four pods is admitted whole.
    cq = t.cluster_queue("a")
    spec_cq = json.loads(kubectl(cluster, "get", "clusterqueue", cq, "-o", "json"))["spec"]
    for res in spec_cq["resourceGroups"][0]["flavors"][0]["resources"]:
        if res["name"] == "cpu":
            res["nominalQuota"] = "4"
    patch = json.dumps({"spec": {"resourceGroups": spec_cq["resourceGroups"]}})
    kubectl(cluster, "patch", "clusterqueue", cq, "--type=merge", "-p", patch)
    api.wait_phase(t.a, "gang", "Running", timeout=QUEUE_TIMEOUT)
    assert len(api.running_pods(t.a, "gang", 1, 4)) == 4


def test_a_gang_that_cannot_all_start_is_evicted_and_queued_again(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    # Quota for three 8-GPU pods, but only two GPU nodes: Kueue admits, one pod cannot be
    # scheduled, and waitForPodsReady takes the whole gang back after its timeout.
    t: Tenants = kueue_teams({"gpu-nodes": {"nvidia.com/gpu": "24", "cpu": "64"}})
    spec = {
        "resources": {"nodes": 3, "gpusPerNode": 8, "cpu": "1", "memory": "1Gi"},
        "hyperparameters": {"maxSteps": 4, "globalBatchSize": 96, "microBatchSize": 4},
    }
    api.create_ftj(queued_job("gang", t.a, t.queue, **spec))
    api.running_pods(t.a, "gang", 1, 2, timeout=QUEUE_TIMEOUT)
    assert wl_condition(workload_of(api, t.a, "gang-1"), "Admitted").get("status") == "True"
    wait_for(
        "attempt 2 after the PodsReady timeout",
        lambda: api.status(t.a, "gang").get("attempt") == 2,
        QUEUE_TIMEOUT,
    )
    status = api.status(t.a, "gang")
    assert status["restarts"] == 0 and status["phase"] in ("Queued", "Pending", "Running")
    wl1 = workload_of(api, t.a, "gang-1")
    assert wl_condition(wl1, "Evicted").get("reason") == "PodsReadyTimeout"
    assert wl1["spec"]["active"] is False
    assert not [p for p in live_pods(api, t.a, "gang") if p["metadata"]["labels"].get(
        "ftjobs.dev/attempt") == "1"], "no pod of the evicted gang may keep running"  # fmt: skip
    assert resume_flag(api, t.a, "gang", 2) is True


# --- fair sharing in the cohort ---------------------------------------------------------


def test_a_team_gets_its_lent_quota_back(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "2"}}, cohort=True)
    a_jobs = [f"a{i}" for i in range(4)]
    for name in a_jobs:
        api.create_ftj(queued_job(name, t.a, t.queue))
    # Team b is idle: team a borrows its quota and runs four jobs on a quota of two.
    for name in a_jobs:
        api.wait_phase(t.a, name, "Running", timeout=QUEUE_TIMEOUT)
    for name in ("b0", "b1"):
        api.create_ftj(queued_job(name, t.b, t.queue))
    for name in ("b0", "b1"):
        api.wait_phase(t.b, name, "Running", timeout=QUEUE_TIMEOUT)

    def split() -> dict[str, list[str]] | None:
        phases: dict[str, list[str]] = {}
        for name in a_jobs:
            phases.setdefault(api.phase(t.a, name) or "", []).append(name)
        return phases if len(phases.get("Running", [])) == 2 else None

    phases = wait_for("team a back to its own quota", split, QUEUE_TIMEOUT)
    assert len(phases.get("Queued", [])) == 2, phases
    for name in phases["Queued"]:
        status = api.status(t.a, name)
        # Reclaimed, not failed: a new attempt waits in the queue, no restart spent.
        assert status["restarts"] == 0
        wait_for(
            f"{name}: attempt 2 queued",
            lambda name=name: api.status(t.a, name).get("attempt") == 2,
            QUEUE_TIMEOUT,
        )
        assert resume_flag(api, t.a, name, 2)


# --- preemption -> new attempt that resumes ----------------------------------------------


PRIORITIES = {
    # Kueue's WorkloadPriorityClass (spec.queuePriorityClass): the queue only.
    "workload-priority-class": (
        {"queuePriorityClass": "ftjobs-batch"},
        {"queuePriorityClass": "ftjobs-urgent"},
    ),
    # The pods' PriorityClass (spec.resources.priorityClassName), which Kueue falls back to.
    "pod-priority-class": (
        {"resources": {"nodes": 1, "cpu": "1", "memory": "1Gi", "priorityClassName": "ftjobs-low"}},
        {
            "resources": {
                "nodes": 1,
                "cpu": "1",
                "memory": "1Gi",
                "priorityClassName": "ftjobs-high",
            }
        },
    ),
}


@pytest.mark.parametrize("how", sorted(PRIORITIES))
def test_preempted_by_higher_priority_then_resumed_in_a_new_attempt(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any, how: str
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "1"}})
    low, high = PRIORITIES[how]
    api.create_ftj(queued_job("low", t.a, t.queue, failurePolicy={"maxRestarts": 0}, **low))
    api.wait_phase(t.a, "low", "Running", timeout=QUEUE_TIMEOUT)
    (victim,) = api.running_pods(t.a, "low", 1, 1)
    assert resume_flag(api, t.a, "low", 1) is False

    api.create_ftj(queued_job("high", t.a, t.queue, **high))
    api.wait_phase(t.a, "high", "Running", timeout=QUEUE_TIMEOUT)
    # Kueue stopped the low job's attempt: its pod got SIGTERM (kwok: exit 143).
    wait_for(
        "attempt 2 of the preempted job",
        lambda: api.status(t.a, "low").get("attempt") == 2,
        QUEUE_TIMEOUT,
    )
    status = api.wait_phase(t.a, "low", "Queued")
    assert status["restarts"] == 0, "a preemption is not a restart (maxRestarts is 0)"
    assert resume_flag(api, t.a, "low", 2) is True
    wl1 = workload_of(api, t.a, "low-1")
    assert wl_condition(wl1, "Evicted").get("reason") == "Preempted"
    assert wl1["spec"]["active"] is False, "the stopped attempt must never be readmitted"
    assert api.kube.get("batch/v1", "Job", t.a, "low-1")["spec"]["suspend"] is True
    assert victim["metadata"]["name"] not in {
        p["metadata"]["name"] for p in live_pods(api, t.a, "low")
    }
    events = kubectl(cluster, "get", "events", "-n", t.a, "--field-selector",
                     "involvedObject.name=low", "-o", "json")  # fmt: skip
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert "Preempted" in reasons

    # The high-priority job ends; Kueue admits attempt 2, which resumes.
    finish(cluster, api, t.a, "high", 1)
    status = api.wait_phase(t.a, "low", "Running", timeout=QUEUE_TIMEOUT)
    assert status["attempt"] == 2 and status["restarts"] == 0
    finish(cluster, api, t.a, "low", 2)


# --- spec.suspend and cancel under Kueue -------------------------------------------------


def test_suspend_deactivates_the_workload_and_resume_starts_a_new_attempt(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "2"}})
    api.create_ftj(queued_job("susp", t.a, t.queue))
    api.wait_phase(t.a, "susp", "Running", timeout=QUEUE_TIMEOUT)

    def set_suspend(value: bool) -> None:
        patch = json.dumps({"spec": {"suspend": value}})
        kubectl(cluster, "patch", "-n", t.a, "ftj/susp", "--type=merge", "-p", patch)

    set_suspend(True)
    wait_for(
        "the workload deactivated",
        lambda: (workload_of(api, t.a, "susp-1") or {}).get("spec", {}).get("active") is False,
        QUEUE_TIMEOUT,
    )
    wait_for("pods stopped", lambda: not live_pods(api, t.a, "susp"), QUEUE_TIMEOUT)
    time.sleep(3)  # Kueue would restart a suspended-but-admitted Job: it must not
    assert not live_pods(api, t.a, "susp")
    status = api.wait_phase(t.a, "susp", "Queued")
    assert condition(status, "Suspended")["status"] == "True"
    assert status["restarts"] == 0

    set_suspend(False)
    status = api.wait_phase(t.a, "susp", "Running", timeout=QUEUE_TIMEOUT)
    assert status["restarts"] == 0 and status["attempt"] == 2
    assert resume_flag(api, t.a, "susp", 2) is True


def test_cancel_under_kueue_frees_the_quota(
    cluster: Any, api: Api, controller: ControllerProcess, kueue_teams: Any
) -> None:
    t: Tenants = kueue_teams({CPU: {"cpu": "1"}})
    api.create_ftj(queued_job("running", t.a, t.queue))
    api.wait_phase(t.a, "running", "Running", timeout=QUEUE_TIMEOUT)
    api.create_ftj(queued_job("waiting", t.a, t.queue))
    api.wait_phase(t.a, "waiting", "Queued", timeout=QUEUE_TIMEOUT)
    ftjobs_cli("cancel", "waiting", "-n", t.a, kubeconfig=cluster.kubeconfig)
    ftjobs_cli("cancel", "running", "-n", t.a, kubeconfig=cluster.kubeconfig)
    for name in ("waiting", "running"):
        api.wait_phase(t.a, name, "Cancelled", timeout=QUEUE_TIMEOUT)
        wait_for(f"{name}: Job gone", lambda name=name: not api.jobs(t.a, name), QUEUE_TIMEOUT)
    wait_for("pods gone", lambda: not live_pods(api, t.a, "running"), QUEUE_TIMEOUT)
    # The quota is free again: a new job is admitted at once.
    api.create_ftj(queued_job("next", t.a, t.queue))
    api.wait_phase(t.a, "next", "Running", timeout=QUEUE_TIMEOUT)
