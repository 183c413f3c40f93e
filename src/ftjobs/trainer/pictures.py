"""The run's pictures and HTML report at the end of training (rank 0), via ftjobs.report.

Drawing must never fail a run that trained well: any error is logged and the run goes
on without pictures (the summary then lists none).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ftjobs.storage import ObjectStore

log = logging.getLogger("ftjobs.trainer")

PICTURES = ("loss.png", "metrics.png")


def draw_report(
    out: ObjectStore, name: str, summary: Mapping[str, Any], data_report: Mapping[str, Any]
) -> dict[str, bytes]:
    """{"loss.png", "metrics.png", "report.html"} from the job's output so far, or {}."""
    try:
        from ftjobs.report import RunData, render_all

        base = RunData.from_store(name, out)
        run = RunData(name, base.progress, base.evaluations, summary, data_report)
        return render_all(run)
    except Exception as e:  # matplotlib missing or broken, unreadable progress: no pictures
        log.warning("could not draw the report pictures: %s", e)
        return {}
