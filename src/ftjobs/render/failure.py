"""The Job's podFailurePolicy: how a pod failure ends the attempt.

A distributed attempt is all-or-nothing: when one rank dies the others lose their
collective peers, and a single replaced pod cannot rejoin a static rendezvous that has
already formed. So the Job never retries a pod (backoffLimit 0, no backoffLimitPerIndex);
every failure fails the Job at once and the controller decides, from the trainer's exit
code, whether to start a new attempt that resumes from the latest checkpoint.

The rules therefore all FailJob. They exist for what they write: the Job's Failed
condition gets reason PodFailurePolicy and a message naming the container and exit code
(or the disruption), which the controller reads to classify the failure even when the
pods are gone. Order matters (first match wins):

1. EXIT_PERMANENT: the trainer knows the spec/data/model is bad; retrying cannot help.
2. DisruptionTarget (preemption, eviction, node drain): not the job's fault, retriable.
   FailJob rather than Ignore: Ignore would recreate one pod that waits for a rendezvous
   its peers have left, while the rest of the gang fails anyway.
3. EXIT_RETRIABLE: preempted by SIGTERM, lost peer, storage hiccup; retriable.
Any other exit code falls through to backoffLimit 0 (reason BackoffLimitExceeded).
"""

from typing import Any

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE

CONTAINER = "trainer"


def _on_exit_code(code: int) -> dict[str, Any]:
    return {
        "action": "FailJob",
        "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [code]},
    }


def pod_failure_policy() -> dict[str, Any]:
    return {
        "rules": [
            _on_exit_code(EXIT_PERMANENT),
            {
                "action": "FailJob",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
            _on_exit_code(EXIT_RETRIABLE),
        ]
    }
