"""The trainer's errors, which decide the exit code the controller sees.

They extend the project's one hierarchy (`ftjobs.api.errors`): a `PermanentError` (bad
spec, model that cannot load, bad config for this world size) exits EXIT_PERMANENT, a
`RetriableError` (stopped by a signal, lost peer) EXIT_RETRIABLE and the next attempt
resumes from the last checkpoint. Data errors come from the data package (`DataError`,
permanent) and storage errors from the storage package (`StorageError`, retriable or not
per error); `__main__` classifies them all by `retriable`.
"""

from __future__ import annotations

from ftjobs.api.errors import PermanentError, RetriableError
from ftjobs.storage.failures import FailureClass


class ModelError(PermanentError):
    """The base model cannot be found or loaded."""


class Stopped(RetriableError):
    """SIGTERM/SIGINT: a checkpoint was taken and the attempt ends here."""


# The rows of the failure table (docs/failure-handling.md) that are not storage's;
# storage.failures.STORAGE_FAILURES has the others.
TRAINER_FAILURES: tuple[FailureClass, ...] = (
    FailureClass(
        "bad-data",
        ("DataError: malformed row, missing field, unknown label, empty split",),
        False,
        "the data cannot be used as it is",
        "the message names the file, the 1-based row and the field",
    ),
    FailureClass(
        "model-missing",
        ("ModelError: no model files under model.uri, missing bucket",),
        False,
        "the base model is not where the spec says",
        "the message names model.uri; upload the model or fix the URI",
    ),
    FailureClass(
        "model-unloadable",
        ("ModelError: files that transformers cannot load",),
        False,
        "the base model cannot be loaded for this task",
        "the message names model.uri and the loader's reason",
    ),
    FailureClass(
        "stopped",
        ("SIGTERM / SIGINT (preemption, suspend, cancel)",),
        True,
        "the attempt was asked to stop; it checkpointed first",
        "none: the next attempt resumes",
    ),
)
