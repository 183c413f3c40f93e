"""Experiment tracking in the tools people already run: TensorBoard and MLflow.

Both are progress reporters on rank 0 (`ProgressReporter` + `EvaluationListener`):

- `TensorBoardReporter` always runs: event files are written to the node's scratch and
  copied to `<job output>/tb/` every `sync_seconds`, at each checkpoint and at the end,
  so `tensorboard --logdir <output>/tb` (or a copy of it) shows train/loss,
  train/learning_rate, validation/* and test/* (base and fine-tuned). A resumed attempt
  writes a new event file next to the earlier ones (TensorBoard reads them all).
- `MlflowReporter` (when `spec.tracking.mlflow` is set) logs the spec as params, the
  same metrics, and at the end summary.json, data-report.json and the pictures as
  artifacts of one MLflow run per job attempt, tagged with the job's name and attempt.

Like every reporter they must never stop training: the composite logs their failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftjobs.api.status import Progress
from ftjobs.storage import ObjectStore

log = logging.getLogger("ftjobs.trainer")

TB_PREFIX = "tb"


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


class TensorBoardReporter:
    def __init__(
        self,
        out: ObjectStore,
        local_dir: Path,
        *,
        purge_step: int | None = None,
        sync_seconds: float = 30.0,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        local_dir.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.local_dir = local_dir
        self.writer = SummaryWriter(log_dir=str(local_dir), purge_step=purge_step)
        self.sync_seconds = sync_seconds
        self.last_sync = time.monotonic()
        self.last_step = 0

    def report(self, progress: Progress) -> None:
        step = progress.step or 0
        self.last_step = step
        if progress.loss is not None:
            self.writer.add_scalar("train/loss", progress.loss, step)
        if progress.learning_rate is not None:
            self.writer.add_scalar("train/learning_rate", progress.learning_rate, step)
        if progress.samples_per_second is not None:
            self.writer.add_scalar("train/samples_per_second", progress.samples_per_second, step)
        if time.monotonic() - self.last_sync >= self.sync_seconds:
            self.sync()

    def evaluation(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        for name, value in _numbers(metrics).items():
            self.writer.add_scalar(f"{split}/{name}", value, step)

    def checkpoint(self, step: int, uri: str) -> None:
        self.sync()

    def finished(self, summary: Mapping[str, Any] | None = None) -> None:
        metrics = (summary or {}).get("metrics") or {}
        step = int((summary or {}).get("steps") or self.last_step)
        for which in ("base", "fineTuned"):
            for name, value in _numbers(metrics.get(which) or {}).items():
                self.writer.add_scalar(f"test/{name}/{which}", value, step)
        self.sync()
        self.writer.close()

    def sync(self) -> None:
        """Flush and copy the event files to `<output>/tb/` (whole files: they are small)."""
        self.writer.flush()
        for path in sorted(self.local_dir.iterdir()):
            if path.is_file():
                self.out.put_file(f"{TB_PREFIX}/{path.name}", path)
        self.last_sync = time.monotonic()
