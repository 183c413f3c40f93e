"""The `--wait` display outside a terminal (CI logs) and the status tables."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from ftjobs.cli.job_views import WaitDisplay, metrics_table, status_table
from ftjobs.sdk.client import JobView


def view(phase: str, attempt: int = 1, **status: Any) -> JobView:
    return JobView.of(
        {
            "metadata": {"name": "j", "namespace": "ns"},
            "status": {"phase": phase, "attempt": attempt, **status},
        }
    )


def test_wait_display_prints_one_line_per_change_in_ci(capsys: pytest.CaptureFixture[str]) -> None:
    display = WaitDisplay()
    assert not display.live_ok  # pytest's stdout is not a terminal
    with display:
        display(view("Pending", attempt=0))
        display(
            view("Running", progress={"step": 10, "totalSteps": 40, "loss": 1.23456, "eta": "3m"})
        )
        display(view("Running", progress={"step": 20, "totalSteps": 40, "loss": 0.9}))
        display(view("Restarting", attempt=1, message="retriable failure, resuming"))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "j: Pending",
        "j: Running (attempt 1)",
        "j: step 10/40 loss 1.2346 eta 3m",
        "j: step 20/40 loss 0.9000",
        "j: Restarting (attempt 1): retriable failure, resuming",
    ]


def render(table: Any) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_status_and_metrics_tables() -> None:
    v = view(
        "Succeeded",
        attempt=2,
        restarts=1,
        progress={"step": 40, "totalSteps": 40, "percent": 100, "loss": 0.5},
        latestCheckpoint={"step": 40, "uri": "s3://o/ns/j/checkpoints/step-000000040"},
        outputModel="s3://o/ns/j/model/",
        metrics={
            "split": "test",
            "base": {"accuracy": 0.5},
            "fineTuned": {"accuracy": 0.9, "f1": 0.8},
        },
    )
    text = render(status_table(v))
    for part in (
        "Succeeded",
        "2 (restarts: 1)",
        "step 40/40 (100%)",
        "loss 0.5000",
        "step 40: s3://o/ns/j/checkpoints",
        "s3://o/ns/j/model/",
    ):
        assert part in text, part
    metrics = render(metrics_table(v))
    assert "accuracy" in metrics and "0.5" in metrics and "0.9" in metrics
    assert "f1" in metrics and "-" in metrics  # no base f1
