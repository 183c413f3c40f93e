"""Compare finished runs: the chosen metric, final loss, steps, wall time, differing settings.

A run comes from a cluster FineTuneJob (its status and summary.json) or from a job's
output folder (`ftjobs run` writes `<output>/local/<name>/`: summary.json and
progress.jsonl). `compare(runs, metric)` returns rows plus the spec fields whose values
differ between the runs (dotted camelCase paths, as `--set` and `--grid` take them) and
which run is best on the metric. Pure: loading is in `load_run_dir` / `run_from_summary`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Metrics where smaller is better; every other metric is maximised.
LOWER_IS_BETTER = frozenset({"loss", "perplexity", "ppl", "eval_loss", "wer", "cer"})


@dataclass(frozen=True)
class Run:
    """What one finished (or failed) run says about itself."""

    name: str
    source: str
    phase: str
    metrics: Mapping[str, float] = field(default_factory=dict)  # fine-tuned, test split
    base_metrics: Mapping[str, float] = field(default_factory=dict)
    final_loss: float | None = None
    steps: int | None = None
    wall_s: float | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)  # camelCase, as in the YAML


@dataclass(frozen=True)
class Comparison:
    metric: str
    lower_is_better: bool
    runs: list[Run]
    differing: list[str]  # spec paths whose values differ between runs
    best: int | None  # index into runs; None when no run has the metric

    def value(self, run: Run, path: str) -> Any:
        return flatten(run.spec).get(path)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (`ftjobs compare -o json`, the sweep's sweep.json)."""
        return {
            "metric": self.metric,
            "lowerIsBetter": self.lower_is_better,
            "best": None if self.best is None else self.runs[self.best].name,
            "differing": self.differing,
            "runs": [
                {
                    "name": r.name,
                    "source": r.source,
                    "phase": r.phase,
                    "metric": r.metrics.get(self.metric),
                    "baseMetric": r.base_metrics.get(self.metric),
                    "metrics": dict(r.metrics),
                    "finalLoss": r.final_loss,
                    "steps": r.steps,
                    "wallSeconds": r.wall_s,
                    "settings": {p: self.value(r, p) for p in self.differing},
                }
                for r in self.runs
            ],
        }


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay whole values (compared as a unit)."""
    if isinstance(doc, Mapping):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: doc} if prefix else {}


def differing_paths(specs: Sequence[Mapping[str, Any]]) -> list[str]:
    flat = [flatten(s) for s in specs]
    paths = sorted({p for f in flat for p in f})
    marker = object()
    return [
        p
        for p in paths
        if len({json.dumps(f.get(p, marker), sort_keys=True, default=str) for f in flat}) > 1
    ]


def default_metric(runs: Sequence[Run]) -> str:
    """The first metric every succeeded run has, preferring accuracy-like ones over loss."""
    names: list[str] = []
    for run in runs:
        names += [n for n in run.metrics if n not in names]
    preferred = [n for n in names if n not in LOWER_IS_BETTER] or names
    return preferred[0] if preferred else "loss"


def compare(
    runs: Sequence[Run], metric: str | None = None, lower_is_better: bool | None = None
) -> Comparison:
    metric = metric or default_metric(runs)
    lower = metric in LOWER_IS_BETTER if lower_is_better is None else lower_is_better
    scored = [(i, r.metrics[metric]) for i, r in enumerate(runs) if metric in r.metrics]
    best: int | None = None
    if scored:
        # Ties go to the earlier run (the first point of a sweep).
        sign = 1.0 if lower else -1.0
        best = min(scored, key=lambda iv: (sign * iv[1], iv[0]))[0]
    return Comparison(
        metric=metric,
        lower_is_better=lower,
        runs=list(runs),
        differing=differing_paths([r.spec for r in runs]) if len(runs) > 1 else [],
        best=best,
    )


def last_loss(records: Sequence[Mapping[str, Any]]) -> tuple[float | None, int | None]:
    """(loss, step) of the last progress record of a progress.jsonl."""
    for record in reversed(records):
        if record.get("event") == "progress" and record.get("loss") is not None:
            return float(record["loss"]), record.get("step")
    return None, None


def run_from_summary(
    summary: Mapping[str, Any],
    *,
    source: str,
    phase: str | None = None,
    spec: Mapping[str, Any] | None = None,
    progress: Sequence[Mapping[str, Any]] = (),
    wall_s: float | None = None,
) -> Run:
    """A Run from a summary.json (plus, where it lacks them, progress records and spec)."""
    metrics = summary.get("metrics") or {}
    loss, step = last_loss(progress)
    final_loss = summary.get("finalLoss", loss)
    if wall_s is None:
        wall_s = summary.get("wallSeconds")
    if wall_s is None and summary.get("timings"):
        wall_s = sum(float(v) for v in summary["timings"].values())
    return Run(
        name=str(summary.get("name") or Path(source).name),
        source=source,
        phase=phase or str(summary.get("phase") or ("Succeeded" if metrics else "Unknown")),
        metrics=_floats(metrics.get("fineTuned")),
        base_metrics=_floats(metrics.get("base")),
        final_loss=None if final_loss is None else float(final_loss),
        steps=summary.get("steps", step),
        wall_s=None if wall_s is None else float(wall_s),
        spec=spec if spec is not None else (summary.get("spec") or {}),
    )


def load_run_dir(path: str | Path) -> Run:
    """A job's output folder (`summary.json`, `progress.jsonl`); a failed run has no summary."""
    folder = Path(path).expanduser()
    summary_file, progress_file = folder / "summary.json", folder / "progress.jsonl"
    if not summary_file.is_file() and not progress_file.is_file():
        raise FileNotFoundError(f"{folder} holds no summary.json or progress.jsonl of a run")
    progress = []
    if progress_file.is_file():
        for line in progress_file.read_text().splitlines():
            try:
                progress.append(json.loads(line))
            except ValueError:
                continue  # a line being written
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        return run_from_summary(summary, source=str(folder), progress=progress)
    return run_from_summary(
        {"name": folder.name}, source=str(folder), phase="Incomplete", progress=progress
    )


def _floats(doc: Any) -> dict[str, float]:
    if not isinstance(doc, Mapping):
        return {}
    return {k: float(v) for k, v in doc.items() if isinstance(v, int | float)}
