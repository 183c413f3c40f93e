"""summarization end to end on real text: docstring descriptions -> their summary lines
(hack/prepare_demo.py summaries, made from the numpy/scipy/scikit-learn packages in the
venv), a tiny T5 from a config, ROUGE from rouge-score.

The adapter learns through its own tokenizer and collator (loss falls, ROUGE reported),
and a whole job runs the recipe on real DeepSpeed (CPU, 2 processes as 2 nodes) with
the base and the fine-tuned model's ROUGE in summary.json and the model card.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.data import prepare_data
from ftjobs.trainer.tasks import get_task
from tests.training.test_tasks import MAX_LEN, falls, train_steps
from tests.training.trainer_run import prepare_demo_module, run, write_config

ROUGE = {"rouge1", "rouge2", "rougeL"}


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """data/summaries/{train,test}.jsonl: {"document", "summary", "origin"} rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTJOBS_DEMO_DIR", str(tmp_path_factory.mktemp("demo")))
        yield prepare_demo_module().summaries()


def job_spec(summaries: Path, **extra: object) -> dict[str, object]:
    return {
        "task": "summarization",
        "model": {"uri": "file:///models/tiny"},
        "dataset": {
            "train": f"file://{summaries}/train.jsonl",
            "test": f"file://{summaries}/test.jsonl",
            "maxSamples": 240,
            "split": {"validationRatio": 0.1, "testRatio": 0.0},
        },
        "hyperparameters": {"epochs": 1},
        "storage": {"output": "file:///tmp/ftjobs-out"},
        **extra,
    }


def test_rouge_is_the_mean_f_measure_in_percent() -> None:
    adapter = get_task("summarization")
    same = adapter.scores(["Return the sum of the array."], ["Return the sum of the array."])
    assert same == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    disjoint = adapter.scores(["alpha beta"], ["gamma delta"])
    assert disjoint == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    half = adapter.scores(["compute the mean", "x y"], ["compute the mean", "z w"])
    assert half["rouge1"] == pytest.approx(50.0)


def test_the_data_is_real_prose_with_default_columns(summaries: Path) -> None:
    rows = [json.loads(line) for line in (summaries / "train.jsonl").read_text().splitlines()]
    assert len(rows) > 400
    assert all(len(r["document"].split()) >= 8 and r["summary"] for r in rows)
    data = prepare_data(FineTuneJobSpec.model_validate(job_spec(summaries)))
    assert data.train.column_names == ["source", "target"]  # document, summary by default
    assert data.report["task"] == "summarization" and len(data.test) > 40


def test_adapter_learns_summaries_and_reports_rouge(
    summaries: Path, tiny_model_dir: Callable[..., Path]
) -> None:
    data = prepare_data(FineTuneJobSpec.model_validate(job_spec(summaries)))
    torch.manual_seed(0)
    adapter = get_task("summarization")
    model, tok = adapter.load_model(
        tiny_model_dir("seq2seq", kind="t5"), labels=None, dtype=torch.float32
    )

    def evaluate() -> dict[str, float]:
        return adapter.evaluate(
            model, tok, data.validation, batch_size=16, max_new_tokens=16, metrics=None,
            max_seq_length=MAX_LEN,
        )  # fmt: skip

    before = evaluate()
    # Real prose is harder than the toy rows of test_tasks.py: more steps, a higher rate.
    losses = train_steps(adapter, model, tok, data.train, steps=150, lr=1e-2)
    assert falls(losses, 0.75), losses
    after = evaluate()
    for metrics in (before, after):
        assert set(metrics) == ROUGE | {"loss"}
        assert all(0.0 <= metrics[k] <= 100.0 for k in ROUGE)
    assert after["loss"] < before["loss"] and after["rouge1"] > before["rouge1"], (before, after)


def test_summarization_job_reports_base_and_fine_tuned_rouge(
    tmp_path: Path, summaries: Path, tiny_model_dir: Callable[..., Path]
) -> None:
    model = tiny_model_dir("seq2seq", kind="t5")
    spec = job_spec(
        summaries,
        model={"uri": f"file://{model}"},
        hyperparameters={
            "learningRate": 1e-2,
            "maxSteps": 60,
            "globalBatchSize": 8,
            "microBatchSize": 4,
            "maxSeqLength": MAX_LEN,
        },
        deepspeed={"zeroStage": 2},
        resources={"nodes": 2},
        storage={"output": f"file://{tmp_path / 'out'}"},
        evaluation={"maxSamples": 32, "maxNewTokens": 16},
    )
    write_config(tmp_path / "job.json", spec)
    codes, nodes = run(tmp_path / "job.json", tmp_path)
    assert codes == [0, 0], nodes.output()[-4000:]

    job = tmp_path / "out" / "t" / "tiny"
    summary = json.loads((job / "summary.json").read_text())
    base, tuned = summary["metrics"]["base"], summary["metrics"]["fineTuned"]
    assert set(base) == set(tuned) == ROUGE | {"loss"}, summary
    # The adapter test above shows ROUGE rising; 60 steps here prove the loss falls.
    assert tuned["loss"] < base["loss"] and tuned["rouge1"] >= base["rouge1"], summary
    card = (job / "model" / "README.md").read_text()
    assert "## Evaluation" in card and "rougeL" in card and f"{tuned['rougeL']:.4f}" in card
