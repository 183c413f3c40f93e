"""data-report.json pieces: cleaning steps, label balance, length percentiles."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RULES = ("drop_empty", "drop_too_long", "dedupe")


@dataclass
class SplitStats:
    """Counts of one split (or of the train source before carving)."""

    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    labels: Counter[Any] = field(default_factory=Counter)  # raw label values
    input_chars: array[int] = field(default_factory=lambda: array("q"))
    output_chars: array[int] = field(default_factory=lambda: array("q"))

    @property
    def rows(self) -> int:
        return len(self.input_chars)

    def add(self, input_text: str, output_text: str | None, label: Any) -> None:
        """Count one kept row; `output_text` is None for tasks without one (classification)."""
        self.input_chars.append(len(input_text))
        if output_text is not None:
            self.output_chars.append(len(output_text))
        if label is not None:
            self.labels[label] += 1

    def steps(self, enabled: dict[str, bool]) -> list[dict[str, Any]]:
        """Rows before/after each cleaning rule, in the order they run."""
        out: list[dict[str, Any]] = []
        rows = self.read
        for rule in RULES:
            after = rows - self.dropped[rule]
            out.append({"rule": rule, "enabled": enabled[rule], "before": rows, "after": after})
            rows = after
        return out

    def summary(self, label_name: Callable[[Any], str]) -> dict[str, Any]:
        total = sum(self.labels.values())
        named: Counter[str] = Counter()
        for raw, count in self.labels.items():
            named[label_name(raw)] += count
        return {
            "rows": self.rows,
            "label_balance": {
                k: {"count": v, "share": round(v / total, 4)} for k, v in sorted(named.items())
            }
            if total
            else None,
            "length_chars": {
                "input": percentiles(self.input_chars),
                "output": percentiles(self.output_chars),
            },
        }


def add_token_lengths(report: dict[str, Any], split: str, encoded: Any) -> dict[str, Any]:
    """Put token-length percentiles of a tokenized map-style split into the report.

    The data step has no tokenizer, so the recipe calls this after `task.tokenize` (the
    lengths are after truncation to maxSeqLength). Returns the report for chaining.
    """
    lengths = array("q", (len(ids) for ids in encoded["input_ids"]))
    report["splits"][split]["length_tokens"] = percentiles(lengths)
    return report


def percentiles(values: array[int]) -> dict[str, float] | None:
    """min / p50 / p90 / p99 / max / mean, or None for no rows."""
    if not values:
        return None
    import numpy as np

    arr = np.frombuffer(values, dtype=np.int64)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "min": int(arr.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": int(arr.max()),
        "mean": round(float(arr.mean()), 2),
    }
