"""What a process's exit code means for the job: done, retriable or permanent.

One rule for the launcher in a pod (`trainer.launch`, over its workers) and for `ftjobs
run` (`sdk.local`, over its simulated nodes), the same as the controller's table for a
pod's code (docs/failure-handling.md): 0 is done; 75 and a death by signal are retriable;
78 and every other code are permanent, because the trainer maps each transient problem it
knows to 75, so an unknown code is a bug a retry would repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE, EXIT_SUCCESS

# A shell (and a container runtime) reports a death by signal N as 128 + N.
_SIGNAL_BASE = 128


class ExitClass(Enum):
    """The outcome an exit code stands for."""

    SUCCESS = EXIT_SUCCESS
    RETRIABLE = EXIT_RETRIABLE
    PERMANENT = EXIT_PERMANENT


def exit_class(code: int) -> ExitClass:
    """The class of one exit code (negative: `subprocess`'s way of saying killed by signal)."""
    if code == EXIT_SUCCESS:
        return ExitClass.SUCCESS
    if code == EXIT_RETRIABLE or code < 0 or code > _SIGNAL_BASE:
        return ExitClass.RETRIABLE
    return ExitClass.PERMANENT


def combined_exit_code(codes: Iterable[int]) -> int:
    """One exit code for processes that ran as one attempt: permanent wins over
    retriable, retriable over success (when one worker hits a bug, its peers fail with a
    lost connection; the bug is the cause)."""
    classes = {exit_class(code) for code in codes}
    if ExitClass.PERMANENT in classes:
        return EXIT_PERMANENT
    if ExitClass.RETRIABLE in classes:
        return EXIT_RETRIABLE
    return EXIT_SUCCESS
