"""What a finished attempt leaves behind: the exported model (with its card, pictures and
lineage), report pictures, and summary.json (docs/storage-layout.md).

Called by `Recipe.finish` once the fine-tuned model's test metrics are known; every rank
takes part in the export (ZeRO-3 gathers the weights), rank 0 writes the files.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import TYPE_CHECKING, Any

from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.storage import upload_dir
from ftjobs.trainer.export import LINEAGE_FILE, model_card, save_model
from ftjobs.trainer.pictures import PICTURES, draw_report
from ftjobs.trainer.runtime import barrier

if TYPE_CHECKING:  # the recipe calls this module; types only
    from ftjobs.trainer.recipe import Recipe


def export_and_summarize(recipe: Recipe, tuned: dict[str, float]) -> dict[str, Any]:
    """Export the model, write the report and summary.json; the summary (rank 0)."""
    started = time.monotonic()
    export_dir = recipe.scratch / f"export-rank-{recipe.world.rank:05d}"
    lora = recipe.spec.lora
    save_model(
        recipe.engine.module,
        recipe.tokenizer,
        export_dir,
        world=recipe.world,
        zero_stage=recipe.spec.deepspeed.zero_stage,
        merge_lora=bool(lora and lora.merge_on_export),
    )
    summary: dict[str, Any] = {}
    if recipe.world.is_main:
        summary = summary_doc(recipe, tuned)
        # Pictures go into the model folder (the card shows them) and next to
        # summary.json, with report.html.
        report = draw_report(recipe.out, recipe.config.name, summary, recipe.data.report)
        pictures = [k for k in PICTURES if k in report]
        lineage = [lineage_entry(recipe, tuned), *recipe.lineage]
        for key in pictures:
            (export_dir / key).write_bytes(report[key])
        card = model_card(
            recipe.config,
            report=recipe.data.report,
            metrics={"base": recipe.base_metrics, "fine_tuned": tuned},
            steps=recipe.step,
            world_size=recipe.world.size,
            pictures=pictures,
            lineage=lineage,
        )
        (export_dir / "README.md").write_text(card)
        (export_dir / LINEAGE_FILE).write_text(json_bytes(lineage).decode())
        upload_dir(recipe.out, export_dir, "model")
        for key, data in report.items():
            recipe.out.put_bytes(key, data)
        recipe.timings["export_s"] = time.monotonic() - started
        summary["timings"] = {k: round(v, 3) for k, v in recipe.timings.items()}
        summary["wallSeconds"] = round(time.monotonic() - recipe.created, 3)
        summary["cpuSeconds"] = round(time.process_time(), 3)  # this rank, all threads
        summary["report"] = sorted(report)
        recipe.out.put_bytes("summary.json", json_bytes(summary))
        recipe.reporter.finished(summary)
    shutil.rmtree(export_dir, ignore_errors=True)
    barrier()
    return summary


def summary_doc(recipe: Recipe, tuned: dict[str, float]) -> dict[str, Any]:
    """summary.json (timings are completed after the export)."""
    spec = recipe.spec
    return {
        "name": recipe.config.name,
        "namespace": recipe.config.namespace,
        "task": str(spec.task),
        "baseModel": spec.model.uri,
        "continuedFrom": _parent(recipe.config),
        "outputModel": recipe.out.url("model/"),
        "metrics": {"split": "test", "base": recipe.base_metrics, "fineTuned": tuned},
        "steps": recipe.step,
        "epochs": round(recipe.epoch + recipe.micro / max(recipe.micro_per_epoch, 1), 4),
        "samplesSeen": recipe.samples_seen,
        "attempt": recipe.config.attempt,
        "resumedFromStep": recipe.resumed_from,
        "worldSize": recipe.world.size,
        "timings": {k: round(v, 3) for k, v in recipe.timings.items()},
        "throughput": recipe.throughput,
        # For `ftjobs compare`: this attempt's trainer wall time, the last logged
        # training loss, and the spec that made the run (a spec holds no credentials).
        "wallSeconds": round(time.monotonic() - recipe.created, 3),
        "finalLoss": None if recipe.last_loss is None else round(recipe.last_loss, 6),
        "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def lineage_entry(recipe: Recipe, tuned: dict[str, float]) -> dict[str, Any]:
    config = recipe.config
    return {
        "job": config.name,
        "namespace": config.namespace,
        "model": recipe.out.url("model/"),
        "baseModel": recipe.spec.model.uri,
        "fromJob": config.parent.name if config.parent else None,
        "steps": recipe.step,
        "metrics": tuned,
    }


def _parent(config: TrainerConfig) -> dict[str, Any] | None:
    """model.fromJob as resolved: the parent job's name, namespace and model URI."""
    return None if config.parent is None else config.parent.model_dump(by_alias=True)


def json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, default=str) + "\n").encode()
