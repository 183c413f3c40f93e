"""Sweeps and comparisons, offline: grid parsing, point naming and labels, validation
of every point before anything runs, and which run `compare` marks best."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftjobs.api.types import JOB_NAME_MAX
from ftjobs.api.validation import SpecError
from ftjobs.sdk.compare import Run, compare, differing_paths, load_run_dir
from ftjobs.sdk.sweep import (
    ANNOTATION_SWEEP_PARAMS,
    LABEL_SWEEP,
    LABEL_SWEEP_POINT,
    parse_grid,
    point_name,
    sweep_points,
)

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = str(ROOT / "examples" / "quickstart-sentiment.yaml")


def test_grid_is_the_cartesian_product_in_order() -> None:
    axes = parse_grid(
        ["hyperparameters.learningRate=1e-5,3e-5,1e-4", "spec.hyperparameters.epochs=1,2"]
    )
    name, points = sweep_points(QUICKSTART, axes)
    assert len(points) == 6
    lrs = [p.job.spec.hyperparameters.learning_rate for p in points]
    epochs = [p.job.spec.hyperparameters.epochs for p in points]
    assert lrs == [1e-5, 1e-5, 3e-5, 3e-5, 1e-4, 1e-4]
    assert epochs == [1, 2, 1, 2, 1, 2]
    assert points[3].overrides == ("hyperparameters.learningRate=3e-5", "hyperparameters.epochs=2")
    for i, p in enumerate(points):
        assert p.job.metadata.labels[LABEL_SWEEP] == name
        assert p.job.metadata.labels[LABEL_SWEEP_POINT] == str(i)
        assert "learningRate" in p.job.metadata.annotations[ANNOTATION_SWEEP_PARAMS]
    assert len({p.name for p in points}) == 6
    assert all(p.name.startswith(name) for p in points)


def test_same_sweep_same_names_and_a_different_grid_never_collides() -> None:
    a = sweep_points(QUICKSTART, parse_grid(["hyperparameters.learningRate=1e-5,1e-4"]))
    b = sweep_points(QUICKSTART, parse_grid(["hyperparameters.learningRate=1e-5,1e-4"]))
    c = sweep_points(QUICKSTART, parse_grid(["hyperparameters.learningRate=1e-5,2e-4"]))
    assert [p.name for p in a[1]] == [p.name for p in b[1]]
    assert not {p.name for p in a[1]} & {p.name for p in c[1]}


def test_point_names_fit_the_job_name_limit() -> None:
    sweep = "a-very-long-job-name-that-goes-on-and-on-abc123"[:33] + "-abc123"
    name = point_name(sweep, 11, 12)
    assert len(name) <= JOB_NAME_MAX
    assert name.endswith("-abc123-11")


def test_a_bad_point_fails_the_whole_sweep_with_its_field_path() -> None:
    with pytest.raises(SpecError) as info:
        sweep_points(QUICKSTART, parse_grid(["hyperparameters.learningRate=1e-4,0"]))
    assert "spec.hyperparameters.learningRate" in str(info.value)
    assert "learningRate=0" in str(info.value)  # which point


@pytest.mark.parametrize(
    "item", ["hyperparameters.learningRate", "=1,2", "hyperparameters.epochs=", "x=1,1"]
)
def test_malformed_grid_is_refused(item: str) -> None:
    with pytest.raises(SpecError):
        parse_grid([item])


def _run(name: str, acc: float | None, lr: float, loss: float = 0.5) -> Run:
    return Run(
        name=name,
        source=name,
        phase="Succeeded" if acc is not None else "Failed",
        metrics={"accuracy": acc, "loss": loss} if acc is not None else {},
        spec={"hyperparameters": {"learningRate": lr, "epochs": 1}, "task": "x"},
    )


def test_compare_marks_the_best_and_lists_only_what_differs() -> None:
    runs = [_run("a", 0.7, 1e-5, 0.9), _run("b", 0.86, 1e-4, 0.4), _run("c", None, 1e-3)]
    comp = compare(runs)
    assert comp.metric == "accuracy" and not comp.lower_is_better
    assert comp.best == 1
    assert comp.differing == ["hyperparameters.learningRate"]
    by_loss = compare(runs, "loss")
    assert by_loss.lower_is_better and by_loss.best == 1
    assert compare(runs, "accuracy", lower_is_better=True).best == 0
    doc = comp.as_dict()
    assert doc["best"] == "b"
    assert doc["runs"][0]["settings"] == {"hyperparameters.learningRate": 1e-5}


def test_ties_go_to_the_earlier_run_and_no_metric_means_no_best() -> None:
    assert compare([_run("a", 0.8, 1.0), _run("b", 0.8, 2.0)]).best == 0
    assert compare([_run("a", None, 1.0)]).best is None


def test_differing_paths_see_missing_fields_and_lists() -> None:
    specs = [{"a": {"b": 1}, "l": [1, 2]}, {"a": {}, "l": [1, 2]}, {"a": {"b": 1}, "l": [2]}]
    assert differing_paths(specs) == ["a.b", "l"]


def test_load_run_dir_reads_summary_and_falls_back_to_progress(tmp_path: Path) -> None:
    done = tmp_path / "done"
    done.mkdir()
    (done / "summary.json").write_text(
        json.dumps(
            {
                "name": "done",
                "metrics": {"base": {"accuracy": 0.4}, "fineTuned": {"accuracy": 0.8}},
                "steps": 40,
                "timings": {"setup_s": 1.5, "train_s": 10.0},
                "spec": {"hyperparameters": {"learningRate": 1e-4}},
            }
        )
    )
    (done / "progress.jsonl").write_text(
        json.dumps({"event": "progress", "step": 40, "loss": 0.25}) + "\n{half a li"
    )
    run = load_run_dir(done)
    assert run.metrics == {"accuracy": 0.8} and run.base_metrics == {"accuracy": 0.4}
    assert run.final_loss == 0.25 and run.steps == 40 and run.wall_s == 11.5
    assert run.spec["hyperparameters"]["learningRate"] == 1e-4

    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "progress.jsonl").write_text(
        json.dumps({"event": "progress", "step": 3, "loss": 2.0})
    )
    run = load_run_dir(failed)
    assert run.phase == "Incomplete" and run.steps == 3 and not run.metrics
    with pytest.raises(FileNotFoundError):
        load_run_dir(tmp_path)
