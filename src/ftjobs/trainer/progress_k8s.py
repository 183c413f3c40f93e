"""Progress to the FineTuneJob's status: the trainer's rank 0 patches `status.progress`
and `status.latestCheckpoint` of its own FineTuneJob, and at the end `metrics` and
`outputModel` from the summary. The per-job ServiceAccount may get/patch only
`finetunejobs/status` of that one name.

Throttled: progress goes out at most every `interval` seconds; checkpoints and the end
of training go out at once. Failure-tolerant: a background thread does the HTTP, so a
slow or unreachable API server never stalls a training step, and errors are logged and
dropped (the next report carries the newest state anyway). Credentials come from the
pod's service account (or $KUBECONFIG outside a cluster).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ftjobs.api.status import Checkpoint, Metrics, Progress
from ftjobs.api.timestamps import now_time
from ftjobs.k8s import Kube

log = logging.getLogger("ftjobs.trainer.progress")


class KubernetesProgressReporter:
    """A ProgressReporter (report / checkpoint / finished) backed by the status subresource."""

    def __init__(
        self,
        namespace: str,
        name: str,
        *,
        kube: Kube | None = None,
        connect: Callable[[], Kube] | None = None,
        interval: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.interval = interval
        self.timeout = timeout
        self._kube = kube
        self._connect = connect or (lambda: Kube.connect())
        self._lock = threading.Condition()
        self._pending: dict[str, Any] = {}
        self._last_progress_sent = float("-inf")
        self._urgent = False
        self._closed = False
        self._inflight = False
        self.sent = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="ftjobs-progress", daemon=True)
        self._thread.start()

    # --- the ProgressReporter protocol ---------------------------------------------------

    def report(self, progress: Progress) -> None:
        body = progress.model_dump(by_alias=True, mode="json", exclude_none=True)
        body.setdefault("updateTime", now_time())
        with self._lock:
            self._pending["progress"] = body
            self._lock.notify()

    def checkpoint(self, step: int, uri: str) -> None:
        ckpt = Checkpoint(step=step, uri=uri, time=now_time())
        with self._lock:
            self._pending["latestCheckpoint"] = ckpt.model_dump(
                by_alias=True, mode="json", exclude_none=True
            )
            self._urgent = True
            self._lock.notify()

    def finished(self, summary: Mapping[str, Any] | None = None) -> None:
        """Flush everything (bounded wait); the controller sets phase and times."""
        with self._lock:
            if summary:
                output = summary.get("outputModel") or summary.get("output_model")
                if isinstance(output, str):
                    self._pending["outputModel"] = output
                metrics = summary.get("metrics")
                if isinstance(metrics, Mapping):
                    try:
                        self._pending["metrics"] = Metrics.model_validate(metrics).model_dump(
                            by_alias=True, mode="json", exclude_none=True
                        )
                    except ValueError:
                        log.warning("summary metrics do not fit status.metrics; not published")
            self._urgent = True
            self._lock.notify()
        self.flush(timeout=max(self.timeout * 2, 1.0))
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._urgent = True
            self._lock.notify()
            while self._pending or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()

    def _due(self) -> bool:
        if not self._pending:
            return False
        if self._urgent or set(self._pending) - {"progress"}:
            return True
        return time.monotonic() - self._last_progress_sent >= self.interval

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._due():
                    wait = None
                    if self._pending:
                        wait = max(self._last_progress_sent + self.interval - time.monotonic(), 0)
                    self._lock.wait(wait)
                if self._closed and not self._pending:
                    return
                if not self._pending:
                    continue
                batch, self._pending = self._pending, {}
                self._urgent = False
                self._inflight = True
            ok = self._send(batch)
            with self._lock:
                self._inflight = False
                if "progress" in batch:
                    self._last_progress_sent = time.monotonic()
                if not ok:
                    # Keep what was not sent unless newer values replaced it; a dead API
                    # server just means status lags until it answers again.
                    for key, value in batch.items():
                        self._pending.setdefault(key, value)
                    if self._closed:
                        self._pending.clear()
                self._lock.notify_all()
            if not ok and not self._closed:
                time.sleep(min(self.interval, 5.0))

    def _send(self, status: dict[str, Any]) -> bool:
        try:
            if self._kube is None:
                self._kube = self._connect()
                self._kube.timeout = self.timeout
            self._kube.patch_finetunejob_status(self.namespace, self.name, status)
        except Exception as exc:  # never let status reporting stop training
            self.errors += 1
            log.warning("progress not published: %s", type(exc).__name__)
            return False
        self.sent += 1
        return True


def reporter_from_env(interval: float = 10.0) -> KubernetesProgressReporter | None:
    """The reporter for this pod's FineTuneJob, or None when not under the controller.

    The rendered pod sets FTJOBS_JOB_NAME and FTJOBS_NAMESPACE; credentials are the pod's
    service account (KUBERNETES_SERVICE_HOST) or $KUBECONFIG (local end-to-end runs).
    """
    name = os.environ.get("FTJOBS_JOB_NAME")
    namespace = os.environ.get("FTJOBS_NAMESPACE")
    reachable = os.environ.get("KUBERNETES_SERVICE_HOST") or os.environ.get("KUBECONFIG")
    if not (name and namespace and reachable):
        return None
    return KubernetesProgressReporter(namespace, name, interval=interval)
