"""`ftjobs compare` and `ftjobs report` on run folders (no cluster), through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ftjobs.cli.main import app
from ftjobs.report import SERIES_KEY

pytestmark = pytest.mark.unit
runner = CliRunner()


def _run(folder: Path, name: str, lr: float, accuracy: float, steps: int = 5) -> Path:
    job = folder / name
    (job / "eval").mkdir(parents=True)
    records = [{"event": "progress", "step": s, "loss": 1.0 / s} for s in range(1, steps + 1)]
    records.insert(2, {"event": "checkpoint", "step": 2, "uri": "x"})
    records.append({"event": "progress", "step": steps, "loss": 0.15})  # re-logged after resume
    (job / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for step in (2, 4):
        doc = {"step": step, "split": "validation", "metrics": {"loss": 0.5, "accuracy": 0.7}}
        (job / "eval" / f"step-{step:09d}.json").write_text(json.dumps(doc))
    summary = {
        "name": name,
        "metrics": {"base": {"accuracy": 0.5, "f1": 0.4}, "fineTuned": {"accuracy": accuracy}},
        "steps": steps,
        "wallSeconds": 12.5,
        "spec": {"hyperparameters": {"learningRate": lr, "epochs": 1}},
    }
    (job / "summary.json").write_text(json.dumps(summary))
    (job / "data-report.json").write_text(json.dumps({"splits": {"train": {"rows": 10}}}))
    return job


def test_compare_folders_marks_the_best(tmp_path: Path) -> None:
    _run(tmp_path / "out", "a", 1e-5, 0.7)
    _run(tmp_path / "out", "b", 1e-4, 0.9)
    result = runner.invoke(app, ["compare", str(tmp_path / "out"), "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["best"] == "b" and doc["differing"] == ["hyperparameters.learningRate"]
    assert doc["runs"][1]["finalLoss"] == 0.15 and doc["runs"][1]["wallSeconds"] == 12.5
    table = runner.invoke(
        app, ["compare", str(tmp_path / "out" / "a"), str(tmp_path / "out" / "b")]
    )
    assert table.exit_code == 0 and "best: b" in table.output and "★" in table.output


def test_compare_of_nothing_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(tmp_path)])
    assert result.exit_code == 1 and "no summary.json or progress.jsonl" in result.output


def test_report_draws_the_folders_data(tmp_path: Path) -> None:
    job = _run(tmp_path, "a", 1e-4, 0.9, steps=7)
    out = tmp_path / "pictures"
    result = runner.invoke(app, ["report", str(job), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "metrics.png", "report.html"]
    with Image.open(out / "loss.png") as image:
        # 7 distinct logged steps (step 7 logged twice: the later record wins), 2 validations.
        assert json.loads(image.text[SERIES_KEY]) == {"train loss": 7, "validation loss": 2}
    with Image.open(out / "metrics.png") as image:
        assert json.loads(image.text[SERIES_KEY]) == {"base model": 2, "fine-tuned": 2}
    page = (out / "report.html").read_text()
    assert "<td>accuracy</td>" in page and page.count("data:image/png;base64,") == 2
