"""Experiment tracking in the tools people already run: TensorBoard and MLflow.

Both are progress reporters on rank 0 (`ProgressReporter` + `EvaluationListener`):

- `TensorBoardReporter` always runs: event files are written to the node's scratch and
  copied to `<job output>/tb/` every `sync_seconds`, at each checkpoint and at the end,
  so `tensorboard --logdir <output>/tb` (an s3:// one too, docs/evaluate-and-iterate.md)
  shows train/loss, train/learning_rate, validation/* and test/* (base and fine-tuned).
  A resumed attempt writes a new event file next to the earlier ones (TensorBoard reads
  them all).
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


MLFLOW_ARTIFACTS = (
    "summary.json",
    "data-report.json",
    "ds_config.json",
    "loss.png",
    "metrics.png",
    "report.html",
)


def _flat(doc: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(doc, Mapping):
        out: dict[str, str] = {}
        for key, value in doc.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: str(doc)[:6000]} if prefix else {}  # MLflow's param value limit


class MlflowReporter:
    """One MLflow run per attempt: the spec as params, train/validation/test metrics, and
    the job's report files as artifacts. Credentials come from the environment
    (MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN, from the Secret)."""

    def __init__(
        self, config: Any, out: ObjectStore, scratch: Path, *, tracking_uri: str, experiment: str
    ) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.out = out
        self.scratch = scratch
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        run = self.client.create_run(
            experiment_id,
            run_name=f"{config.name}-attempt-{config.attempt}",
            tags={
                "ftjobs.job": config.name,
                "ftjobs.namespace": config.namespace,
                "ftjobs.attempt": str(config.attempt),
                "ftjobs.output": config.output_uri,
            },
        )
        self.run_id: str = run.info.run_id
        spec = config.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        params = [Param(k, v) for k, v in sorted(_flat(spec).items())]
        for start in range(0, len(params), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self.last_step = 0
        log.info("MLflow run %s in experiment %r at %s", self.run_id, experiment, tracking_uri)

    def _log(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        batch = [Metric(k, v, stamp, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def report(self, progress: Progress) -> None:
        step = progress.step or 0
        self.last_step = step
        values = {"train/loss": progress.loss, "train/learning_rate": progress.learning_rate}
        self._log({k: float(v) for k, v in values.items() if v is not None}, step)

    def evaluation(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        self._log({f"{split}/{k}": v for k, v in _numbers(metrics).items()}, step)

    def checkpoint(self, step: int, uri: str) -> None:
        pass

    def finished(self, summary: Mapping[str, Any] | None = None) -> None:
        metrics = (summary or {}).get("metrics") or {}
        step = int((summary or {}).get("steps") or self.last_step)
        test = {
            f"test/{name}/{which}": value
            for which in ("base", "fineTuned")
            for name, value in _numbers(metrics.get(which) or {}).items()
        }
        self._log(test, step)
        folder = self.scratch / "mlflow-artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        for key in MLFLOW_ARTIFACTS:
            if key in self.out.list(key):  # a listing: no NotFound to tell from failures
                self.out.get_file(key, folder / key)
        self.client.log_artifacts(self.run_id, str(folder))
        self.client.set_terminated(self.run_id, "FINISHED")
