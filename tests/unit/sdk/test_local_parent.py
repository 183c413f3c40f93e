"""model.fromJob for `ftjobs run` and `ftjobs render`: the earlier local run's model, or an
error naming spec.model.fromJob when that run is missing or did not finish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.job import FineTuneJob
from ftjobs.api.validation import SpecError
from ftjobs.render.config import stored_config
from ftjobs.sdk.local import local_config
from ftjobs.sdk.manifests import render_manifests


def job(output: Path | None = None) -> FineTuneJob:
    doc: dict[str, Any] = {
        "apiVersion": "ftjobs.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "second", "namespace": "ml"},
        "spec": {
            "task": "sequence-classification",
            "model": {"fromJob": "first"},
            "dataset": {"train": "s3://data/train.jsonl"},
            "hyperparameters": {"maxSteps": 4, "globalBatchSize": 8, "microBatchSize": 8},
            "storage": {"output": f"file://{output}" if output else "s3://out/runs"},
        },
    }
    return FineTuneJob.model_validate(doc)


def finished_run(root: Path, *, summary: bool = True, card: bool = True) -> Path:
    run = root / "local" / "first"
    (run / "model").mkdir(parents=True)
    if summary:
        (run / "summary.json").write_text("{}")
    if card:
        (run / "model" / "README.md").write_text("# first\n")
    return run


def test_a_finished_local_run_is_the_base_model(tmp_path: Path) -> None:
    run = finished_run(tmp_path)
    config = local_config(job(), nproc=1, nnodes=1, output=str(tmp_path))
    assert config.spec.model.uri == f"file://{run}/model"
    assert config.spec.model.from_job is None
    assert config.parent is not None
    assert (config.parent.name, config.parent.namespace) == ("first", "local")


@pytest.mark.parametrize(
    ("summary", "card", "words"),
    [
        (None, None, "has not finished"),
        (False, True, "has not finished"),
        (True, False, "no model"),
    ],
)
def test_a_missing_or_unfinished_run_is_an_error_at_the_field(
    tmp_path: Path, summary: bool | None, card: bool | None, words: str
) -> None:
    if summary is not None:
        finished_run(tmp_path, summary=summary, card=bool(card))
    with pytest.raises(SpecError) as err:
        local_config(job(), nproc=1, nnodes=1, output=str(tmp_path))
    [error] = err.value.errors
    assert error.path == "spec.model.fromJob"
    assert "'first'" in error.message and words in error.message


def test_render_assumes_the_parent_shares_the_output() -> None:
    objs = render_manifests(job())
    text = stored_config(next(o for o in objs if o["kind"] == "Job"))
    assert '"uri": "s3://out/runs/ml/first/model"' in text
