"""`ftjobs sweep --local`: 3 learning rates over the quickstart spec (tiny model and data
so it stays short), run one after another by the real trainer; the comparison must mark
the run with the best test accuracy, read back from each run's own summary.json. The
runs' pictures are checked against the runs' data: the loss curve has one point per
logged step and one per validation, read from the drawn figure (the PNG's series chunk);
its TensorBoard event files hold the same values, read with TensorBoard's own reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ftjobs.report import SERIES_KEY
from tests.training.trainer_run import REPO

FTJOBS = str(Path(sys.executable).parent / "ftjobs")
QUICKSTART = REPO / "examples" / "quickstart-sentiment.yaml"
LEARNING_RATES = ("1e-5", "2e-2", "6e-2")


def _series(png: Path) -> dict[str, int]:
    with Image.open(png) as image:
        assert 400 <= image.width <= 2000 and 250 <= image.height <= 1200, image.size
        assert len(set(image.convert("L").get_flattened_data())) > 10  # something was drawn
        return dict(json.loads(image.text[SERIES_KEY]))


def test_local_sweep_of_three_learning_rates_marks_the_best(
    tmp_path: Path, tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    model = tiny_model_dir("sequence-classification")
    train = tiny_data_dir("sequence-classification", n=160) / "train.jsonl"
    report = tmp_path / "sweep.json"
    result = subprocess.run(
        [
            FTJOBS,
            "sweep",
            str(QUICKSTART),
            "--local",
            "--grid",
            f"hyperparameters.learningRate={','.join(LEARNING_RATES)}",
            "--output-dir",
            str(tmp_path / "out"),
            "--report",
            str(report),
            "--set",
            f"model.uri=file://{model}",
            "--set",
            f"dataset.train=file://{train}",
            "--set",
            "dataset.test=null",
            "--set",
            "dataset.maxSamples=null",
            "--set",
            "dataset.split.testRatio=0.25",
            "--set",
            "dataset.split.validationRatio=0.1",
            "--set",
            "hyperparameters.epochs=null",
            "--set",
            "hyperparameters.maxSteps=16",
            "--set",
            "hyperparameters.globalBatchSize=8",
            "--set",
            "hyperparameters.microBatchSize=8",
            "--set",
            "evaluation.everySteps=4",
            "--set",
            "checkpointing.everySteps=null",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    comparison = json.loads(report.read_text())
    runs = comparison["runs"]
    assert len(runs) == 3 and comparison["metric"] == "accuracy"
    assert comparison["differing"] == ["hyperparameters.learningRate"]

    # Independently: each run's accuracy from its own summary.json.
    accuracy = {}
    for run in runs:
        folder = Path(run["source"])
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["name"] == run["name"] and summary["steps"] == 16
        accuracy[run["name"]] = summary["metrics"]["fineTuned"]["accuracy"]
        lr = summary["spec"]["hyperparameters"]["learningRate"]
        assert run["settings"] == {"hyperparameters.learningRate": lr}
    best = max(accuracy.values())
    assert accuracy[comparison["best"]] == best
    assert comparison["best"] == next(n for n, a in accuracy.items() if a == best)  # first on ties
    assert len(set(accuracy.values())) > 1, accuracy  # the sweep really varied something
    assert f"best: {comparison['best']}" in result.stdout and "★" in result.stdout

    # Pictures of the best run, checked against its progress and validation records.
    folder = Path(next(r["source"] for r in runs if r["name"] == comparison["best"]))
    records = [json.loads(line) for line in (folder / "progress.jsonl").read_text().splitlines()]
    logged_steps = {r["step"] for r in records if r.get("event") == "progress"}
    validations = sorted((folder / "eval").glob("step-*.json"))
    assert len(validations) == 4  # steps 4, 8, 12, 16
    series = _series(folder / "loss.png")
    assert series == {"train loss": len(logged_steps), "validation loss": len(validations)}
    summary = json.loads((folder / "summary.json").read_text())
    metrics = _series(folder / "metrics.png")
    names = set(summary["metrics"]["base"]) | set(summary["metrics"]["fineTuned"])
    assert metrics == {"base model": len(names), "fine-tuned": len(names)}
    assert summary["report"] == ["loss.png", "metrics.png", "report.html"]
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "label_balance" in page
    # The model card shows the same pictures, which travel with the model folder.
    card = (folder / "model" / "README.md").read_text()
    assert "(loss.png)" in card and "(metrics.png)" in card
    assert (folder / "model" / "loss.png").read_bytes() == (folder / "loss.png").read_bytes()

    # TensorBoard event files in the job's output, read with TensorBoard's own reader.
    events = EventAccumulator(str(folder / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "validation/accuracy"} <= tags
    train_loss = events.Scalars("train/loss")
    assert [e.step for e in train_loss] == sorted(logged_steps)
    by_step = {r["step"]: r["loss"] for r in records if r.get("event") == "progress"}
    assert all(abs(e.value - by_step[e.step]) < 1e-5 for e in train_loss)
    assert [e.step for e in events.Scalars("validation/loss")] == [4, 8, 12, 16]
    tuned = events.Scalars("test/accuracy/fineTuned")
    assert len(tuned) == 1 and abs(tuned[0].value - accuracy[comparison["best"]]) < 1e-6
