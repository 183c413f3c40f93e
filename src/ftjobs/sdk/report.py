"""`ftjobs report`: the pictures and report.html of a run, drawn from its output files.

A run is an output folder of `ftjobs run` or a FineTuneJob on the cluster (its output
prefix on S3, read with the caller's credentials). The drawing is `ftjobs.report`'s,
the same the trainer does at the end of a run, so a report of a running job shows the
loss so far and a finished job's report equals the one next to its summary.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ftjobs.api.trainer_config import job_output_uri
from ftjobs.report import RunData, render_all
from ftjobs.storage import open_store

if TYPE_CHECKING:
    from ftjobs.sdk.client import JobView


def run_data_from_uri(
    name: str, uri: str, *, endpoint: str | None = None, region: str | None = None
) -> RunData:
    """RunData from a job's output prefix (any storage scheme, e.g. `file://...`)."""
    return RunData.from_store(name, open_store(uri, endpoint=endpoint, region=region))


def run_data_from_dir(folder: str | Path) -> RunData:
    path = Path(folder).expanduser().resolve()
    if not (path / "progress.jsonl").is_file():
        raise FileNotFoundError(f"{path} holds no progress.jsonl of a run")
    return run_data_from_uri(path.name, f"file://{path}")


def write_report(run: RunData, out_dir: str | Path) -> list[Path]:
    """Draw loss.png, metrics.png (when there are metrics) and report.html into `out_dir`."""
    target = Path(out_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for key, data in render_all(run).items():
        (target / key).write_bytes(data)
        written.append(target / key)
    return written


def run_data_of_job(view: JobView) -> RunData:
    """RunData of a cluster job, from its output prefix (credentials: this machine's)."""
    storage = (view.raw.get("spec") or {}).get("storage") or {}
    if not storage.get("output"):
        raise ValueError(f"FineTuneJob {view.namespace}/{view.name} has no storage.output")
    uri = job_output_uri(storage["output"], view.namespace, view.name)
    return run_data_from_uri(
        view.name, uri, endpoint=storage.get("endpoint"), region=storage.get("region")
    )
