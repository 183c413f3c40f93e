"""report.html: one self-contained page (pictures inline as data URIs) per run."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from typing import Any

from ftjobs.report.run_data import RunData

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:1em;overflow:auto}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else _e(value if value is not None else "—")


def _metrics_table(summary: Mapping[str, Any]) -> str:
    metrics = summary.get("metrics") or {}
    base, tuned = metrics.get("base") or {}, metrics.get("fineTuned") or {}
    names = sorted(set(base) | set(tuned))
    if not names:
        return "<p>No test metrics.</p>"
    rows = "".join(
        f"<tr><td>{_e(n)}</td><td class=n>{_num(base.get(n))}</td>"
        f"<td class=n>{_num(tuned.get(n))}</td></tr>"
        for n in names
    )
    return f"<table><tr><th>metric</th><th>base model</th><th>fine-tuned</th></tr>{rows}</table>"


def _splits_table(report: Mapping[str, Any]) -> str:
    splits = report.get("splits") or {}
    rows = []
    for name, info in splits.items():
        if not info:
            continue
        balance = info.get("label_balance") or {}
        labels = ", ".join(f"{_e(k)} {v.get('share', 0):.0%}" for k, v in balance.items())
        length = ((info.get("length_chars") or {}).get("input")) or {}
        rows.append(
            f"<tr><td>{_e(name)}</td><td class=n>{_e(info.get('rows'))}</td>"
            f"<td>{labels or '—'}</td><td class=n>{_e(length.get('p50', '—'))}</td>"
            f"<td class=n>{_e(length.get('max', '—'))}</td></tr>"
        )
    head = "<tr><th>split</th><th>rows</th><th>labels</th><th>median chars</th><th>max</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def report_html(run: RunData, pictures: Mapping[str, bytes]) -> str:
    summary = run.summary or {}
    images = "".join(
        f'<h2>{_e(title)}</h2><img alt="{_e(title)}" src="data:image/png;base64,'
        f'{base64.b64encode(pictures[key]).decode()}">'
        for key, title in (("loss.png", "Loss"), ("metrics.png", "Base vs fine-tuned"))
        if key in pictures
    )
    facts = [
        ("task", summary.get("task")),
        ("base model", summary.get("baseModel")),
        ("output model", summary.get("outputModel")),
        ("steps", summary.get("steps")),
        ("wall time (s)", summary.get("wallSeconds")),
    ]
    facts_html = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v)
    hyper = (summary.get("spec") or {}).get("hyperparameters") or {}
    hyper_html = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in hyper.items())
    data = run.data_report or {}
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_e(run.name)}: ftjobs report</title>
<style>{_STYLE}</style></head><body>
<h1>{_e(run.name)}</h1>
<table>{facts_html}</table>
<h2>Test metrics</h2>
{_metrics_table(summary) if summary else "<p>The run has not finished (no summary.json).</p>"}
{images}
<h2>Hyperparameters</h2>
<table>{hyper_html or "<tr><td>see the job spec</td></tr>"}</table>
<h2>Data</h2>
{_splits_table(data) if data else "<p>No data-report.json.</p>"}
<details><summary>data-report.json</summary><pre>{_e(json.dumps(data, indent=2))}</pre></details>
</body></html>
"""
