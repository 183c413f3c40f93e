"""Evaluation of a split through the task adapter, and the base model's test metrics
kept once per job (eval/base.json), so retried attempts do not evaluate it again."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import torch.distributed as dist

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.storage import ObjectNotFound, ObjectStore
from ftjobs.trainer.outcome import json_bytes
from ftjobs.trainer.runtime import World
from ftjobs.trainer.tasks import TaskAdapter

log = logging.getLogger("ftjobs.trainer")


def evaluate_split(
    task: TaskAdapter,
    model: Any,
    tokenizer: Any,
    rows: Any,
    *,
    split: str,
    spec: FineTuneJobSpec,
    world: World,
) -> dict[str, float]:
    """Task metrics on `rows` of `split` (validation/test); every rank runs the same forwards."""
    if rows is None or len(rows) == 0:
        return {}
    if (cap := spec.evaluation.max_samples) is not None and len(rows) > cap:
        rows = rows.select(range(cap))
    wanted = spec.evaluation.metrics
    if split == "validation" and wanted is not None and "loss" not in wanted:
        wanted = [*wanted, "loss"]  # the validation curve of loss.png and TensorBoard
    return task.evaluate(
        model,
        tokenizer,
        rows,
        batch_size=spec.hyperparameters.micro_batch_size,
        max_new_tokens=spec.evaluation.max_new_tokens,
        metrics=wanted,
        synced_gpus=spec.deepspeed.zero_stage == 3 and world.size > 1,
        max_seq_length=spec.hyperparameters.max_seq_length,
    )


def base_metrics(
    out: ObjectStore, world: World, evaluate_test: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """The base model's test metrics: eval/base.json when an earlier attempt wrote it."""
    found: list[Any] = [None]
    if world.is_main:
        with contextlib.suppress(ObjectNotFound):
            found[0] = json.loads(out.get_bytes("eval/base.json"))["metrics"]
    if dist.is_initialized():
        dist.broadcast_object_list(found, src=0)
    if found[0] is not None:
        return dict(found[0])
    metrics = evaluate_test()
    if world.is_main:
        out.put_bytes("eval/base.json", json_bytes({"split": "test", "metrics": metrics}))
    log.info("base model on test: %s", format_metrics(metrics))
    return metrics


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "(none)"
