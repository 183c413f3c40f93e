"""Failure classification: why an attempt's Job failed and whether a retry can help.

The trainer owns the exit codes (ftjobs.api.constants):
  retriable: exit 75 (EX_TEMPFAIL), a pod disrupted (eviction, preemption, node loss,
             DisruptionTarget condition), a signal death (exit > 128) that is not OOMKilled;
  permanent: exit 78 (EX_CONFIG), OOMKilled, any other non-zero code (the trainer maps
             every transient problem it knows to 75, so an unknown code is a bug that a
             retry would only repeat).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE
from ftjobs.controller import repeats
from ftjobs.controller.reconcile.observed import ObservedJob, PodFailure

# Pod disruption reasons (the DisruptionTarget condition, pod.status.reason) that mean
# the node or the cluster took the pod away, not the trainer: always retriable.
DISRUPTION_REASONS = frozenset(
    {
        "Evicted",
        "NodeLost",
        "Preempting",
        "Shutdown",
        "Terminated",
        "UnexpectedAdmissionError",
        "PreemptionByScheduler",
        "PreemptionByKubeScheduler",
        "DeletionByTaintManager",
        "DeletionByPodGC",
        "EvictionByEvictionAPI",
        "TerminationByKubelet",
    }
)
_EXIT_CODE_IN_MESSAGE = re.compile(r"exit code (\d+)")


@dataclass(frozen=True)
class Failure:
    retriable: bool
    reason: str
    message: str
    signature: str = ""  # what identifies it across attempts ("" = not an error of the job)


def classify(job: ObservedJob, pods: tuple[PodFailure, ...]) -> Failure:
    """Why the attempt's Job failed, and whether a new attempt can help."""
    if job.failure_reason == "DeadlineExceeded":
        # The Job's activeDeadlineSeconds: its pods were stopped (and may well have exited
        # with the retriable code on SIGTERM), but the time budget is spent.
        return Failure(False, "DeadlineExceeded", job.failure_message or "deadline exceeded")
    # A permanent verdict from any pod wins: restarting would fail the same way.
    for pod in pods:
        if pod.exit_code == EXIT_PERMANENT:
            return Failure(False, "PermanentFailure", _describe(pod))
    for pod in pods:
        if pod.exit_code not in (None, 0, EXIT_RETRIABLE) and not pod.disruption:
            if pod.reason == "OOMKilled":
                return Failure(False, "OOMKilled", _describe(pod))
            if pod.exit_code is not None and pod.exit_code <= 128:
                return Failure(False, "PermanentFailure", _describe(pod))
    for pod in pods:
        if pod.exit_code == EXIT_RETRIABLE:
            return Failure(True, "RetriableFailure", _describe(pod), _signature(pods))
        if pod.disruption or pod.reason in DISRUPTION_REASONS:
            return Failure(True, "PodDisrupted", _describe(pod))
        if pod.exit_code is not None and pod.exit_code > 128:
            return Failure(True, "PodKilled", _describe(pod), _signature(pods))
    # No pod left to look at (garbage-collected): the Job's condition message names the
    # exit code when podFailurePolicy matched.
    match = _EXIT_CODE_IN_MESSAGE.search(job.failure_message)
    if match:
        code = int(match.group(1))
        retriable = code == EXIT_RETRIABLE or (code > 128)
        return Failure(
            retriable,
            "RetriableFailure" if retriable else "PermanentFailure",
            job.failure_message,
        )
    # BackoffLimitExceeded with nothing else known: pods failed for reasons the trainer did
    # not classify (image pull, node loss before start); give it another attempt.
    return Failure(True, job.failure_reason or "JobFailed", job.failure_message or "Job failed")


def _signature(pods: tuple[PodFailure, ...]) -> str:
    """The attempt's failure across its pods, independent of pod names and order."""
    sigs = sorted(
        {
            repeats.signature(p.exit_code, p.message)
            for p in pods
            if not (p.disruption or p.reason in DISRUPTION_REASONS)
        }
        - {""}
    )
    return " | ".join(sigs)[: repeats.SIGNATURE_LIMIT]


def _describe(pod: PodFailure) -> str:
    what = f"pod {pod.pod}"
    if pod.exit_code is not None:
        what += f" exited with code {pod.exit_code}"
    elif pod.disruption or pod.reason:
        what += f" was disrupted ({pod.disruption or pod.reason})"
    if pod.reason and pod.exit_code is not None and pod.reason not in ("Error", "Completed"):
        what += f" ({pod.reason})"
    if pod.message:
        what += f": {pod.message.strip()}"
    return what
