"""Background checkpoint uploads, so training does not wait on the network.

One worker thread takes (step, local_dir) jobs from a queue and commits them in order
through a CheckpointStore; in-order commits keep LATEST and retention simple. The
uploader owns each submitted directory and deletes it after its commit. A failure is
kept and re-raised in the training thread by `raise_if_failed()`, `wait()` or the next
`submit()`; after a failure the worker commits nothing more (a later step would commit
over a gap the trainer does not know about) and leaves the remaining directories on disk.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from ftjobs.storage.checkpoints import CheckpointStore

log = logging.getLogger(__name__)

OnDone = Callable[[int, str], None]
_Job = tuple[int, Path, OnDone | None]


class BackgroundUploader:
    """Commits checkpoints on a worker thread; `max_pending` bounds the local disk used."""

    def __init__(self, checkpoints: CheckpointStore, *, max_pending: int = 2) -> None:
        self.checkpoints = checkpoints
        # A bounded queue: when uploads fall behind, submit() blocks instead of letting
        # checkpoints pile up on the local disk.
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max(1, max_pending))
        self._error: BaseException | None = None
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False
        # A daemon thread: if the process dies mid-upload, the step simply has no
        # manifest and is never used.
        self._thread = threading.Thread(target=self._run, name="checkpoint-upload", daemon=True)
        self._thread.start()

    def submit(self, step: int, local_dir: Path, on_done: OnDone | None = None) -> None:
        """Queue `local_dir` (now owned by the uploader) for commit as step `step`."""
        self.raise_if_failed()
        if self._closed:
            raise RuntimeError("BackgroundUploader is closed")
        with self._idle:
            self._pending += 1
        self._queue.put((step, local_dir, on_done))

    def raise_if_failed(self) -> None:
        """Re-raise the first upload failure, if any, in the calling thread."""
        if self._error is not None:
            raise self._error

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted checkpoint is committed (or failed), then re-raise.

        Raises TimeoutError when uploads are still running after `timeout` seconds.
        """
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise TimeoutError(f"{self._pending} checkpoint upload(s) still running")
        self.raise_if_failed()

    def close(self, timeout: float | None = None) -> None:
        """Wait for the queue to drain, stop the worker, and re-raise any failure."""
        try:
            self.wait(timeout)
        finally:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
                self._thread.join(timeout)

    def __enter__(self) -> BackgroundUploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        return self._pending

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            step, local_dir, on_done = job
            try:
                if self._error is None:
                    uri = self.checkpoints.commit(step, local_dir)
                    shutil.rmtree(local_dir, ignore_errors=True)
                    if on_done is not None:
                        on_done(step, uri)
                else:
                    log.warning(
                        "not uploading step %d after an earlier failure; kept %s", step, local_dir
                    )
            except BaseException as e:  # kept for the training thread, never lost
                log.error("checkpoint upload of step %d failed: %s", step, e)
                self._error = e
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
