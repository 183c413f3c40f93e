"""CI gates on a job's metrics: `--min-metric accuracy=0.8`, `--max-metric perplexity=20`.

Thresholds apply to the fine-tuned model's numbers of a summary (summary.json written by
the trainer, or the FineTuneJob's status.metrics), so a pipeline fails when a retrained
model is worse than the bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Threshold:
    metric: str
    value: float
    minimum: bool  # True: metric >= value; False: metric <= value

    def __str__(self) -> str:
        return f"{self.metric} {'>=' if self.minimum else '<='} {self.value:g}"


@dataclass(frozen=True)
class GateResult:
    threshold: Threshold
    actual: float | None

    @property
    def passed(self) -> bool:
        if self.actual is None:
            return False
        t = self.threshold
        return self.actual >= t.value if t.minimum else self.actual <= t.value


def parse_thresholds(minimums: Sequence[str] = (), maximums: Sequence[str] = ()) -> list[Threshold]:
    """`NAME=VALUE` strings into thresholds; ValueError names the bad one."""
    out = []
    for items, minimum in ((minimums, True), (maximums, False)):
        for item in items:
            name, sep, value = item.partition("=")
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not sep or not name.strip() or number != number:
                raise ValueError(f"expected NAME=NUMBER, got {item!r}")
            out.append(Threshold(name.strip(), number, minimum))
    return out


def fine_tuned_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The fine-tuned model's metrics of a summary.json or a status.metrics dict."""
    metrics = summary.get("metrics", summary) or {}
    tuned = metrics.get("fineTuned") or metrics.get("fine_tuned") or {}
    return {str(k): float(v) for k, v in tuned.items() if isinstance(v, int | float)}


def evaluate(thresholds: Sequence[Threshold], metrics: Mapping[str, float]) -> list[GateResult]:
    return [GateResult(t, metrics.get(t.metric)) for t in thresholds]
