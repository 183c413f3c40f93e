"""Validation messages a user can act on: numbers, nearest valid values, did-you-mean,
task/column mismatches, and file:line (sorted) from every command that reads a file."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ftjobs.api.validation import SpecError, parse_job
from ftjobs.cli.main import app
from tests.builders import make_job


def errors(doc: dict) -> dict[str, str]:  # type: ignore[type-arg]
    with pytest.raises(SpecError) as info:
        parse_job(doc)
    return {e.path: e.message for e in info.value.errors}


def test_enum_typos_get_a_did_you_mean() -> None:
    found = errors(make_job("a").task("sequnce-classification").doc())
    assert found["spec.task"].endswith("did you mean 'sequence-classification'?")
    found = errors(make_job("a").spec("deepspeed.precision", "bf61").doc())
    assert found["spec.deepspeed.precision"].endswith("did you mean 'bf16'?")


@pytest.mark.parametrize(
    ("global_batch", "micro", "nodes", "message"),
    [
        (
            48,
            32,
            1,
            "globalBatchSize must be a multiple of microBatchSize: 48 is not a multiple of 32; "
            "nearest valid: 32 or 64",
        ),
        (
            48,
            16,
            2,
            "globalBatchSize must be divisible by microBatchSize x total processes (nodes x "
            "processes per node): 48 is not divisible by 16 x 2 process(es) = 32; "
            "nearest valid: 32 or 64",
        ),
        (
            16,
            16,
            2,
            "globalBatchSize must be divisible by microBatchSize x total processes (nodes x "
            "processes per node): 16 is not divisible by 16 x 2 process(es) = 32; "
            "nearest valid: 32",
        ),
    ],
)
def test_batch_messages_carry_the_numbers(
    global_batch: int, micro: int, nodes: int, message: str
) -> None:
    found = errors(make_job("a").batch(global_batch, micro).nodes(nodes).doc())
    assert found == {"spec.hyperparameters.globalBatchSize": message}


def test_columns_of_another_task_are_refused() -> None:
    job = make_job("a").task("sequence-classification").dataset(fields={"prompt": "q"})
    assert errors(job.doc()) == {
        "spec.dataset.fields": "sequence-classification reads only text, textPair, label "
        "from dataset.fields"
    }
    make_job("b").task("causal-lm").dataset(fields={"prompt": "q", "text": "t"}).build()


BAD = """\
apiVersion: ftjobs.dev/v1alpha1
kind: FineTuneJob
metadata:
  name: bad
spec:
  task: sequence-classification
  model:
    uri: hf://org/m
  dataset:
    train: s3://data/train.jsonl
  deepspeed:
    zeroStage: 7
  hyperparameters:
    epochs: 1
    learningRate: 2
  storage:
    output: s3://out/x
"""


@pytest.mark.parametrize("command", ["validate", "render", "run", "preflight"])
def test_every_file_command_reports_file_line_sorted(command: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    args = [command, str(path)] + (["--offline"] if command == "preflight" else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert lines == [
        # The models list hyperparameters first; the file, and so the output, deepspeed.
        f"{path}:12: spec.deepspeed.zeroStage: must be <= 3 (got 7)",
        f"{path}:15: spec.hyperparameters.learningRate: must be <= 1.0 (got 2)",
    ], result.output
