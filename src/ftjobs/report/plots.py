"""loss.png and metrics.png with matplotlib's Agg canvas (no pyplot, no display).

Each PNG carries, in a text chunk (`ftjobs:series`), the number of points of every
series as read back from the drawn artists, so a test (or a person) can check that a
picture shows the run's data and not a stale or partial copy.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ftjobs.report.run_data import RunData

SERIES_KEY = "ftjobs:series"
# Metrics where lower is better are drawn apart (their scale is not 0..1).
_LOWER = ("loss", "perplexity", "ppl")


def loss_points(run: RunData) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train, validation) points: one per logged step; a resumed attempt's re-logged
    step replaces the earlier record of that step."""
    train: dict[int, float] = {}
    for record in run.progress:
        if record.get("event") == "progress" and record.get("loss") is not None:
            train[int(record["step"])] = float(record["loss"])
    validation: dict[int, float] = {}
    for doc in run.evaluations:
        loss = (doc.get("metrics") or {}).get("loss")
        if doc.get("split", "validation") == "validation" and loss is not None:
            validation[int(doc["step"])] = float(loss)
    return sorted(train.items()), sorted(validation.items())


def loss_figure(run: RunData) -> Figure:
    train, validation = loss_points(run)
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", color="#1f77b4", linewidth=1.5)
    if validation:
        ax.plot(
            *zip(*validation, strict=True),
            label="validation loss",
            color="#d62728",
            marker="o",
            linewidth=1.2,
        )
    if not (train or validation):
        ax.text(0.5, 0.5, "no loss logged yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(f"{run.name}: loss")
    ax.grid(alpha=0.3)
    if train or validation:
        ax.legend()
    fig.tight_layout()
    return fig


def metrics_figure(run: RunData) -> Figure | None:
    """Grouped bars, base vs fine-tuned, per test metric; None without metrics."""
    metrics: Mapping[str, Any] = (run.summary or {}).get("metrics") or {}
    base, tuned = metrics.get("base") or {}, metrics.get("fineTuned") or {}
    names = sorted(set(base) | set(tuned))
    if not names:
        return None
    scores = [n for n in names if n not in _LOWER]
    lower = [n for n in names if n in _LOWER]
    groups = [g for g in (scores, lower) if g]
    fig = Figure(figsize=(3 + 1.6 * len(names), 4), dpi=100)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, group in zip(axes, groups, strict=True):
        xs = range(len(group))
        width = 0.38
        for offset, label, values, color in (
            (-width / 2, "base model", base, "#9e9e9e"),
            (width / 2, "fine-tuned", tuned, "#2ca02c"),
        ):
            heights = [float(values.get(n, 0.0)) for n in group]
            bars = ax.bar([x + offset for x in xs], heights, width, label=label, color=color)
            ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_xticks(list(xs), group)
        ax.set_title("lower is better" if group is lower else "higher is better", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{run.name}: test split")
    fig.tight_layout()
    return fig


def _series(fig: Figure) -> dict[str, int]:
    """Points per drawn series, read from the figure's artists (lines and bar groups)."""
    out: dict[str, int] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            out[str(line.get_label())] = len(list(line.get_xdata()))  # type: ignore[arg-type]
        for container in ax.containers:
            label = str(container.get_label())
            out[label] = out.get(label, 0) + len(container)
    return out


def png_bytes(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={SERIES_KEY: json.dumps(_series(fig))})
    return buf.getvalue()


def render_all(run: RunData) -> dict[str, bytes]:
    """{"loss.png", "metrics.png" (when there are metrics), "report.html"}."""
    from ftjobs.report.html import report_html

    files = {"loss.png": png_bytes(loss_figure(run))}
    metrics = metrics_figure(run)
    if metrics is not None:
        files["metrics.png"] = png_bytes(metrics)
    files["report.html"] = report_html(run, files).encode()
    return files
