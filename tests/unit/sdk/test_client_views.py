"""The SDK's pure parts: job views, summaries from status, conflict paths, pod ranks."""

from __future__ import annotations

from typing import Any

from ftjobs.k8s import jobs_api
from ftjobs.sdk.client import JobView, _differing_fields, summary_of


def stored(phase: str | None = None, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ftjobs.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "j", "namespace": "ns"},
        "spec": {"storage": {"output": "file:///nonexistent-ftjobs-test"}},
        "status": {**({"phase": phase} if phase else {}), **status},
    }


def test_view_of_a_new_job_is_pending_and_not_finished() -> None:
    view = JobView.of(stored())
    assert view.phase == "Pending" and not view.finished


def test_failure_reason_comes_from_the_failed_condition() -> None:
    view = JobView.of(
        stored(
            "Failed",
            message="attempt 1 failed",
            conditions=[
                {"type": "Running", "status": "False", "reason": "Failed"},
                {"type": "Failed", "status": "True", "reason": "PermanentFailure",
                 "message": "exit 78: bad data"},
            ],
        )
    )  # fmt: skip
    assert view.finished
    assert view.reason == "PermanentFailure: exit 78: bad data"


def test_summary_falls_back_to_the_status() -> None:
    view = JobView.of(
        stored(
            "Succeeded",
            attempt=2,
            restarts=1,
            outputModel="s3://o/ns/j/model/",
            metrics={"split": "test", "base": {"f1": 0.4}, "fineTuned": {"f1": 0.8}},
        )
    )
    summary = summary_of(view)
    assert summary["source"] == "status"
    assert summary["metrics"]["fineTuned"] == {"f1": 0.8}
    assert summary["attempt"] == 2 and summary["outputModel"] == "s3://o/ns/j/model/"


def test_differing_fields_name_camel_case_paths() -> None:
    old = {"hyperparameters": {"learningRate": 1e-5, "epochs": 3}, "task": "causal-lm"}
    new = {"hyperparameters": {"learningRate": 2e-5, "epochs": 3}, "task": "causal-lm"}
    assert _differing_fields(old, new) == ["hyperparameters.learningRate"]


def test_pod_rank_and_attempt_from_labels_and_annotations() -> None:
    pod = {
        "metadata": {
            "labels": {"ftjobs.dev/attempt": "2"},
            "annotations": {"batch.kubernetes.io/job-completion-index": "3"},
        }
    }
    assert jobs_api.pod_rank(pod) == 3 and jobs_api.pod_attempt(pod) == 2
    assert jobs_api.pod_rank({"metadata": {}}) is None
