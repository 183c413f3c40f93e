"""`ftjobs report RUN`: loss curve, base-vs-fine-tuned chart and report.html of a run.

RUN is an output folder of a local run or a FineTuneJob name (its output is read from
storage with this machine's credentials). `ftjobs status NAME --plot` does the same for
a cluster job. The files land in --out (default `./<name>-report/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ftjobs.cli.job_commands import Context, Kubeconfig, Namespace, _client, _fail
from ftjobs.cli.output import out
from ftjobs.sdk.client import ClientError, JobView


def write_job_report(view: JobView, out_dir: Path | None) -> None:
    """Draw a cluster job's report into `out_dir` and print the paths."""
    from ftjobs.sdk.report import run_data_of_job, write_report

    try:
        run = run_data_of_job(view)
    except Exception as exc:  # storage unreachable or denied from here
        _fail(f"cannot read the output of {view.name}: {exc}")
    _print(write_report(run, out_dir or Path(f"{view.name}-report")))


def _print(paths: list[Path]) -> None:
    for path in paths:
        out.print(f"wrote {path}", markup=False)


def report(
    run: Annotated[str, typer.Argument(help="Output folder of a run, or a FineTuneJob name.")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for loss.png, metrics.png, report.html."),
    ] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Draw a run's loss curve (train and validation), its base-vs-fine-tuned chart and
    report.html (pictures, metrics table, data report)."""
    from ftjobs.sdk.report import run_data_from_dir, write_report

    folder = Path(run).expanduser()
    if folder.is_dir():
        try:
            data = run_data_from_dir(folder)
        except (FileNotFoundError, ValueError) as exc:
            _fail(str(exc))
        _print(write_report(data, out_dir or Path(f"{data.name}-report")))
        return
    client = _client(kubeconfig, context, namespace)
    try:
        view = client.get(run, namespace=namespace)
    except ClientError as exc:
        _fail(f"{run}: not a run folder, and {exc}")
    write_job_report(view, out_dir)


def register(app: typer.Typer) -> None:
    app.command()(report)
