"""Which watch events cost a reconcile: a pod's normal start does not, a stuck pod does,
and the watch event of a Job the controller itself just created does not."""

from __future__ import annotations

from typing import Any

from ftjobs.controller.handlers import Controller, _child_event, job_signature, pod_signature
from ftjobs.k8s import Kube
from ftjobs.k8s.client import resource_of

LABELS = {"ftjobs.dev/job": "demo"}


def _controller() -> Controller:
    # The event filter makes no request: a Kube without a client.
    return Controller(kube=Kube(None))  # type: ignore[arg-type]


def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "demo-a1-0", "uid": "u1", "labels": LABELS}, "status": status}


def _events(ctl: Controller, kind: str, *bodies: dict[str, Any]) -> int:
    """How many of `bodies` (watch events in order) put the owner on the queue."""
    signature = pod_signature if kind == "pod" else job_signature
    queued = 0
    for body in bodies:
        _child_event(ctl, kind, {"type": "MODIFIED"}, body, "ns", "x", LABELS, signature)
        if len(ctl.queue):
            queued += 1
            ctl.queue._queue.get_nowait()
            ctl.queue._waiting.clear()
    return queued


def test_a_pod_starting_normally_costs_no_reconcile() -> None:
    ctl = _controller()
    created = _pod(phase="Pending")
    scheduled = _pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}])
    pulling = _pod(
        phase="Pending",
        containerStatuses=[{"state": {"waiting": {"reason": "ContainerCreating"}}}],
    )
    running = _pod(phase="Running", containerStatuses=[{"state": {"running": {}}}])
    assert _events(ctl, "pod", created, scheduled, pulling, running) == 0


def test_a_stuck_pod_costs_a_reconcile_when_its_reason_changes() -> None:
    ctl = _controller()
    stuck = _pod(
        phase="Pending",
        containerStatuses=[{"state": {"waiting": {"reason": "ErrImagePull", "message": "m"}}}],
    )
    backoff = _pod(
        phase="Pending",
        containerStatuses=[{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "m"}}}],
    )
    unstuck = _pod(phase="Running", containerStatuses=[{"state": {"running": {}}}])
    # stuck (news), stuck again (not), another reason (news), running again (news)
    assert _events(ctl, "pod", stuck, stuck, backoff, unstuck) == 3


def test_the_watch_event_of_our_own_job_create_costs_no_reconcile() -> None:
    rendered = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "x", "namespace": "ns", "labels": LABELS},
        "spec": {"suspend": False},
    }
    stored = {**rendered, "metadata": {**rendered["metadata"], "uid": "u"}, "status": {}}
    active = {**stored, "status": {"active": 1}}
    ctl = _controller()
    ctl.remember_creating(rendered)
    assert _events(ctl, "job", stored, active) == 1
    # Negative control: without remembering it, the create's event is news too.
    assert _events(_controller(), "job", stored, active) == 2


def test_resource_of_names_the_resource_and_subresource() -> None:
    assert resource_of("/api/v1/namespaces/a/pods") == "pods"
    assert resource_of("/apis/batch/v1/namespaces/a/jobs/x") == "jobs"
    path = "/apis/ftjobs.dev/v1alpha1/namespaces/a/finetunejobs/x/status"
    assert resource_of(path) == "finetunejobs/status"
    assert resource_of("/api/v1/nodes/n") == "nodes"
