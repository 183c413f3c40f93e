"""Extraction of reconcile's inputs from API objects (the JSON the API server returns)."""

from __future__ import annotations

from typing import Any

from ftjobs.controller.observe import observe_job, pod_failure, pod_waiting
from ftjobs.controller.reconcile import PodFailure, PodWaiting, classify


def test_failed_indexed_job() -> None:
    job = observe_job(
        {
            "metadata": {
                "name": "demo-2",
                "labels": {"ftjobs.dev/job": "demo", "ftjobs.dev/attempt": "2"},
            },
            "spec": {"suspend": False},
            "status": {
                "failed": 1,
                "active": 0,
                "startTime": "2026-11-29T04:00:00Z",
                "conditions": [
                    {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"},
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "PodFailurePolicy",
                        "message": "Container trainer for pod ns/demo-2-0-abc failed with "
                        "exit code 75 matching FailJob rule at index 0",
                    },
                ],
            },
        }
    )
    assert job.attempt == 2 and job.failed_condition and not job.complete
    assert job.failure_reason == "PodFailurePolicy" and job.start_time
    assert classify(job, ()).retriable


def test_running_and_suspended_job() -> None:
    job = observe_job(
        {
            "metadata": {
                "name": "a-1",
                "labels": {"ftjobs.dev/attempt": "1"},
                "deletionTimestamp": "2026-11-29T04:00:00Z",
            },
            "spec": {"suspend": True},
            "status": {
                "active": 2,
                "ready": 2,
                "conditions": [{"type": "Suspended", "status": "True"}],
            },
        }
    )
    assert job.suspended and job.active == 2 and job.ready == 2 and job.deleting
    assert not job.failed_condition and not job.complete


def test_pod_with_exit_code_and_termination_message() -> None:
    failure = pod_failure(
        {
            "metadata": {"name": "demo-1-0-x"},
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "trainer",
                        "state": {
                            "terminated": {
                                "exitCode": 78,
                                "reason": "Error",
                                "message": "bad dataset\n",
                            }
                        },
                    }
                ],
            },
        }
    )
    assert failure == PodFailure("demo-1-0-x", 78, "bad dataset\n", "Error", "")


def test_evicted_pod_and_disruption_condition() -> None:
    evicted = pod_failure(
        {
            "metadata": {"name": "p"},
            "status": {
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: memory.",
                "conditions": [
                    {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}
                ],
            },
        }
    )
    assert evicted is not None and evicted.exit_code is None
    assert evicted.reason == "Evicted" and evicted.disruption == "TerminationByKubelet"
    assert classify(observe_job({"metadata": {"name": "j"}}), (evicted,)).retriable


def test_running_pod_is_not_a_failure() -> None:
    assert pod_failure({"metadata": {"name": "p"}, "status": {"phase": "Running"}}) is None


def _pod(status: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "demo-1-0-x", **meta}, "status": status}


def test_pod_waiting_reads_stuck_containers_and_unschedulable_pods() -> None:
    secret = {
        "waiting": {"reason": "CreateContainerConfigError", "message": 'secret "s3" not found'}
    }
    pod = _pod({"phase": "Pending", "containerStatuses": [{"name": "trainer", "state": secret}]})
    assert pod_waiting(pod) == PodWaiting(
        "demo-1-0-x", "CreateContainerConfigError", 'secret "s3" not found'
    )
    pull = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    init = _pod({"phase": "Pending", "initContainerStatuses": [{"state": pull}]})
    assert pod_waiting(init) == PodWaiting(
        "demo-1-0-x", "ImagePullBackOff", "Back-off pulling image"
    )
    unschedulable = _pod(
        {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}
            ],
        }
    )  # fmt: skip
    waiting = pod_waiting(unschedulable)
    assert waiting is not None and waiting.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in waiting.message
    # Negative controls: normal start-up, a running pod, a pod being deleted.
    creating = {"waiting": {"reason": "ContainerCreating"}}
    assert (
        pod_waiting(_pod({"phase": "Pending", "containerStatuses": [{"state": creating}]})) is None
    )
    assert (
        pod_waiting(_pod({"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}))
        is None
    )
    assert pod_waiting(_pod({"phase": "Pending", "containerStatuses": [{"state": secret}]},
                            deletionTimestamp="2026-01-01T00:00:00Z")) is None  # fmt: skip
