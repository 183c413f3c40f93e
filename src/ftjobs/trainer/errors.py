"""The trainer's error taxonomy, which decides the exit code the controller sees.

`PermanentError` (bad spec, model that cannot load, bad config for this world size):
retrying cannot help, exit EXIT_PERMANENT. `RetriableError` (stopped by a signal, lost
peer): a new attempt resumes from the last checkpoint, exit EXIT_RETRIABLE. Data errors
come from the data package (`DataError`) and storage errors from the storage package
(`StorageError`); `__main__` classifies those too.
"""

from __future__ import annotations

from ftjobs.storage.failures import FailureClass


class PermanentError(Exception):
    """Retrying cannot fix this (the spec, the model or the data is wrong)."""


class ModelError(PermanentError):
    """The base model cannot be found or loaded."""


class RetriableError(Exception):
    """A new attempt can succeed (preemption, lost peer, transient infrastructure)."""


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
