"""Where rank 0 tells the world how training goes: reporters and log lines.

`ProgressReporter` is the interface: `report(Progress)` for step updates (may be
throttled by an implementation), `checkpoint(step, uri)` when a checkpoint is committed,
`finished(summary)` once at the end. Implementations here: `NullReporter`,
`StorageReporter` (appends `progress.jsonl` in the job's output, which `ftjobs run` and
people follow) and `CompositeReporter`. The controller adds a Kubernetes status one
(`progress_k8s.KubernetesProgressReporter`, same three methods). Reporters must never
stop training: failures are logged and dropped by the composite.

Logs are one line per event, human-readable, or JSON lines with FTJOBS_LOG_FORMAT=json.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ftjobs.api.status import Progress
from ftjobs.api.timestamps import now_time
from ftjobs.storage import JsonlWriter, ObjectStore

log = logging.getLogger("ftjobs.trainer")

PROGRESS_FILE = "progress.jsonl"


@runtime_checkable
class ProgressReporter(Protocol):
    def report(self, progress: Progress) -> None: ...

    def checkpoint(self, step: int, uri: str) -> None: ...

    def finished(self, summary: Mapping[str, Any] | None = None) -> None: ...


@runtime_checkable
class EvaluationListener(Protocol):
    """Reporters that also want validation results (trackers: TensorBoard, MLflow)."""

    def evaluation(self, step: int, split: str, metrics: Mapping[str, float]) -> None: ...


class NullReporter:
    """Reports nothing (ranks other than 0 use it)."""

    def report(self, progress: Progress) -> None:
        pass

    def checkpoint(self, step: int, uri: str) -> None:
        pass

    def finished(self, summary: Mapping[str, Any] | None = None) -> None:
        pass


class StorageReporter:
    """Appends one JSON line per report (and per checkpoint) to `progress.jsonl`.

    Records: {"event": "progress", "step", "totalSteps", "epoch", "loss", "learningRate",
    "samplesPerSecond", "eta", "percent", "updateTime"}, {"event": "checkpoint", "step",
    "uri", "time"} and {"event": "finished", ...summary keys}. A resumed attempt keeps
    appending to the same file.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.writer = JsonlWriter(store, PROGRESS_FILE)

    def report(self, progress: Progress) -> None:
        record = {"event": "progress"}
        record.update(progress.model_dump(by_alias=True, mode="json", exclude_none=True))
        self.writer.append(record)

    def checkpoint(self, step: int, uri: str) -> None:
        self.writer.append({"event": "checkpoint", "step": step, "uri": uri, "time": now_time()})

    def finished(self, summary: Mapping[str, Any] | None = None) -> None:
        record: dict[str, Any] = {"event": "finished", "time": now_time()}
        if summary:
            record["outputModel"] = summary.get("outputModel")
            record["metrics"] = summary.get("metrics")
        self.writer.append(record)


class CompositeReporter:
    """Fans out to several reporters; one failing reporter never stops training."""

    def __init__(self, *reporters: ProgressReporter) -> None:
        self.reporters = reporters

    def _each(self, method: str, *args: Any) -> None:
        for reporter in self.reporters:
            try:
                getattr(reporter, method)(*args)
            except Exception as e:
                log.warning("%s.%s failed: %s", type(reporter).__name__, method, e)

    def report(self, progress: Progress) -> None:
        self._each("report", progress)

    def checkpoint(self, step: int, uri: str) -> None:
        self._each("checkpoint", step, uri)

    def finished(self, summary: Mapping[str, Any] | None = None) -> None:
        self._each("finished", summary)

    def evaluation(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        for reporter in self.reporters:
            if isinstance(reporter, EvaluationListener):
                try:
                    reporter.evaluation(step, split, metrics)
                except Exception as e:
                    log.warning("%s.evaluation failed: %s", type(reporter).__name__, e)


def format_duration(seconds: float) -> str:
    """12m30s style, as in the status field `eta`."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Throughput:
    """Samples/s and ETA over the steps of this attempt (resumed steps do not count)."""

    def __init__(self, start_step: int, total_steps: int) -> None:
        self.start_step = start_step
        self.total_steps = total_steps
        self.started = time.monotonic()
        self.samples = 0

    def add(self, samples: int) -> None:
        self.samples += samples

    def progress(self, step: int, *, epoch: float, loss: float | None, lr: float) -> Progress:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        done = step - self.start_step
        eta = None
        if done > 0 and self.total_steps:
            eta = format_duration(elapsed / done * (self.total_steps - step))
        return Progress(
            step=step,
            total_steps=self.total_steps,
            epoch=round(epoch, 4),
            loss=None if loss is None else round(loss, 6),
            learning_rate=max(lr, 0.0),
            samples_per_second=round(self.samples / elapsed, 3),
            eta=eta,
            percent=min(100, int(100 * step / self.total_steps)) if self.total_steps else None,
            update_time=now_time(),
        )


class _Formatter(logging.Formatter):
    def __init__(self, rank: int, as_json: bool) -> None:
        super().__init__()
        self.rank = rank
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            message += "\n" + self.formatException(record.exc_info)
        stamp = datetime.fromtimestamp(record.created, UTC)
        if self.as_json:
            doc: dict[str, Any] = {
                "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(),
                "rank": self.rank,
                "logger": record.name,
                "message": message,
            }
            doc.update(getattr(record, "fields", {}))
            return json.dumps(doc, default=str)
        return f"{stamp:%H:%M:%S} [rank {self.rank}] {record.levelname:<7} {message}"


def setup_logging(rank: int) -> None:
    """One line per event on stderr: human by default, JSON with FTJOBS_LOG_FORMAT=json.

    Rank 0 logs at INFO; other ranks only warnings (the same events, without the noise).
    DeepSpeed's own INFO chatter is lowered to warnings.
    """
    as_json = os.environ.get("FTJOBS_LOG_FORMAT", "").lower() == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(rank, as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    # Progress bars are not log lines (and garble a captured log).
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    for noisy in ("DeepSpeed", "deepspeed", "torch.distributed", "datasets", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
