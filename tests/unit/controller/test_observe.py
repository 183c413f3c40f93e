"""Extraction of reconcile's inputs from API objects (the JSON the API server returns)."""

from __future__ import annotations

from ftjobs.controller.observe import observe_job, pod_failure
from ftjobs.controller.reconcile import PodFailure, classify


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
