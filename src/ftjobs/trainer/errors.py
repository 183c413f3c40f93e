"""The trainer's error taxonomy, which decides the exit code the controller sees.

`PermanentError` (bad spec, model that cannot load, bad config for this world size):
retrying cannot help, exit EXIT_PERMANENT. `RetriableError` (stopped by a signal, lost
peer): a new attempt resumes from the last checkpoint, exit EXIT_RETRIABLE. Data errors
come from the data package (`DataError`) and storage errors from the storage package
(`StorageError`); `__main__` classifies those too.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot fix this (the spec, the model or the data is wrong)."""


class ModelError(PermanentError):
    """The base model cannot be found or loaded."""


class RetriableError(Exception):
    """A new attempt can succeed (preemption, lost peer, transient infrastructure)."""


class Stopped(RetriableError):
    """SIGTERM/SIGINT: a checkpoint was taken and the attempt ends here."""
