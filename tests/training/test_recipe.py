"""The recipe end to end: real DeepSpeed on CPU, 2 processes as 2 nodes (gloo), file://.

ZeRO-2 and ZeRO-3 tiny runs learn (loss falls, test accuracy rises), leave the S3 layout
of docs/storage-layout.md with committed checkpoints, and export a model that loads with
`from_pretrained` and reproduces the test metric the summary reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftjobs.api.spec import FineTuneJobSpec
from tests.training.trainer_run import classification_spec, progress, run, write_config


@pytest.mark.parametrize("stage", [2, 3])
def test_tiny_run_learns_checkpoints_and_exports(
    stage: int,
    tmp_path: Path,
    tiny_classification: tuple[Path, Path],
) -> None:
    model, data = tiny_classification
    spec = classification_spec(
        model,
        data,
        tmp_path / "out",
        deepspeed={"zeroStage": stage},
        evaluation={"everySteps": 15},
    )
    config = write_config(tmp_path / "job.json", spec)
    codes, nodes = run(tmp_path / "job.json", tmp_path)
    assert codes == [0, 0], nodes.output()[-4000:]

    job = tmp_path / "out" / "t" / "tiny"
    for name in ("data-report.json", "ds_config.json", "summary.json", "eval/base.json"):
        assert (job / name).is_file(), name
    assert json.loads((job / "ds_config.json").read_text())["zero_optimization"]["stage"] == stage
    assert (job / "eval" / "step-000000015.json").is_file()

    losses = [r["loss"] for r in progress(job) if r["event"] == "progress"]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1, losses

    # Checkpoints every 5 steps, keep 2: the last two, each with its manifest; LATEST names one.
    steps = sorted(p.name for p in (job / "checkpoints").iterdir() if p.is_dir())
    assert steps == ["step-000000035", "step-000000040"]
    for step in steps:
        manifest = json.loads((job / "checkpoints" / step / "MANIFEST.json").read_text())
        names = {f["path"] for f in manifest["files"]}
        assert {"trainer-state-rank-00000.pt", "trainer-state-rank-00001.pt"} <= names
        for f in manifest["files"]:
            assert (job / "checkpoints" / step / f["path"]).stat().st_size == f["size"]
    assert (job / "checkpoints" / "LATEST").read_text() == "step-000000040"

    summary = json.loads((job / "summary.json").read_text())
    base, tuned = summary["metrics"]["base"], summary["metrics"]["fineTuned"]
    assert tuned["accuracy"] >= 0.9 and tuned["accuracy"] > base["accuracy"] + 0.2, summary
    assert summary["steps"] == 40 and summary["worldSize"] == 2
    assert summary["outputModel"] == f"file://{job}/model/"
    card = (job / "model" / "README.md").read_text()
    assert "## Evaluation" in card and f"{tuned['accuracy']:.4f}" in card
    assert (job / "model" / "MANIFEST.json").is_file()

    _exported_model_reproduces(job / "model", config.spec, tuned)


def _exported_model_reproduces(
    model_dir: Path, spec: FineTuneJobSpec, reported: dict[str, float]
) -> None:
    """from_pretrained on the export, the same test rows: the reported accuracy and F1."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftjobs.trainer.data import prepare_data
    from ftjobs.trainer.tasks import get_task

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    assert model.dtype == torch.float32
    data = prepare_data(spec)
    metrics = get_task("sequence-classification").evaluate(
        model,
        tokenizer,
        data.test,
        batch_size=spec.hyperparameters.micro_batch_size,
        max_new_tokens=1,
        metrics=None,
        max_seq_length=spec.hyperparameters.max_seq_length,
    )
    assert metrics["accuracy"] == pytest.approx(reported["accuracy"], abs=1e-9)
    assert metrics["f1"] == pytest.approx(reported["f1"], abs=1e-9)
    assert metrics["loss"] == pytest.approx(reported["loss"], rel=1e-4)


def test_lora_run_exports_adapter_and_merged_model(
    tmp_path: Path,
    tiny_classification: tuple[Path, Path],
) -> None:
    from transformers import AutoModelForSequenceClassification

    model, data = tiny_classification
    spec = classification_spec(
        model,
        data,
        tmp_path / "out",
        lora={"r": 4, "alpha": 8, "targetModules": ["query", "value"], "mergeOnExport": True},
        hyperparameters={"maxSteps": 10},
        checkpointing={"everySteps": 5},
    )
    write_config(tmp_path / "job.json", spec)
    codes, nodes = run(tmp_path / "job.json", tmp_path)
    assert codes == [0, 0], nodes.output()[-4000:]

    exported = tmp_path / "out" / "t" / "tiny" / "model"
    adapter = json.loads((exported / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["query", "value"]
    assert (exported / "adapter_model.safetensors").is_file()
    merged = AutoModelForSequenceClassification.from_pretrained(
        exported / "merged", local_files_only=True
    )
    assert merged.config.num_labels == 2
    assert not any("lora" in name for name, _ in merged.named_parameters())
    manifest = json.loads((exported / "MANIFEST.json").read_text())
    assert "merged/model.safetensors" in {f["path"] for f in manifest["files"]}
