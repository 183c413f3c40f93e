"""Pictures and the HTML report of one run, from the files the trainer writes.

Input: `RunData` (progress.jsonl records, eval/step-*.json validations, summary.json,
data-report.json); output: `loss.png` (training loss per logged step, validation loss
per evaluation), `metrics.png` (base vs fine-tuned on the test split) and `report.html`
(both pictures inline, the metrics table, the data report). Pure: bytes in, bytes out
(matplotlib's Agg canvas, no pyplot state, no display), so the trainer (at the end of
a run) and `ftjobs report` (any time later) draw exactly the same thing.
"""

from ftjobs.report.html import report_html
from ftjobs.report.plots import (
    SERIES_KEY,
    loss_figure,
    loss_points,
    metrics_figure,
    png_bytes,
    render_all,
)
from ftjobs.report.run_data import RunData

__all__ = [
    "SERIES_KEY",
    "RunData",
    "loss_figure",
    "loss_points",
    "metrics_figure",
    "png_bytes",
    "render_all",
    "report_html",
]
