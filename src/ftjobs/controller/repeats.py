"""Repeated failures: when retrying would only fail the same way again (pure, no I/O).

A retriable failure (exit 75, a killed container) is retried up to failurePolicy.
maxRestarts. But some errors the trainer cannot tell from transient ones repeat on every
attempt: the same message, from the same step, each time. Each failure gets a signature
(exit code + termination message with numbers and addresses masked, so "at step 1200"
and a different pod address still match); the status keeps the latest one and how many
attempts in a row ended with it. A new committed checkpoint between two failures means
the job is advancing, and the count starts again. Disruptions (eviction, preemption,
node loss) and stops by a signal are not errors of the job and do not count.
"""

from __future__ import annotations

import re

from ftjobs.api.status import FailureStreak

_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
# The trainer's messages for a stop by signal (SIGTERM from the kubelet, preemption):
# retriable by design, never a repeating error.
_STOP_PREFIXES = ("Stopped:", "interrupted")
SIGNATURE_LIMIT = 1024


def signature(exit_code: int | None, message: str) -> str:
    """What identifies a failure across attempts; "" when it must not be counted."""
    text = message.strip()
    if text.startswith(_STOP_PREFIXES):
        return ""
    text = _SPACE.sub(" ", _NUMBER.sub("#", _HEX.sub("#", text)))
    head = f"exit {exit_code}" if exit_code is not None else "no exit code"
    return f"{head}: {text}"[:SIGNATURE_LIMIT] if text else head


def next_streak(
    previous: FailureStreak | None, sig: str, attempt: int, checkpoint_step: int | None
) -> FailureStreak:
    """The streak after `attempt` failed with signature `sig` (idempotent per attempt)."""
    if previous is not None and previous.last_attempt == attempt:
        return previous  # this attempt is counted already (a repeated reconcile)
    same = previous is not None and previous.signature == sig
    advanced = (
        previous is not None
        and checkpoint_step is not None
        and (previous.checkpoint_step is None or checkpoint_step > previous.checkpoint_step)
    )
    count = previous.attempts + 1 if previous is not None and same and not advanced else 1
    return FailureStreak(
        signature=sig, attempts=count, last_attempt=attempt, checkpoint_step=checkpoint_step
    )
