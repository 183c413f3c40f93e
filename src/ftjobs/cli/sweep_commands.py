"""`ftjobs compare` and `ftjobs sweep`: evaluate, then iterate.

`compare RUN...` takes FineTuneJob names (cluster) or output folders of local runs and
prints one row per run: the chosen metric (best run marked), base model's value, final
training loss, steps, wall time, and every spec field whose value differs between runs.

`sweep FILE --grid PATH=V1,V2 ...` submits one FineTuneJob per grid point (labels
`ftjobs.dev/sweep` / `ftjobs.dev/sweep-point` link them), at most --parallel at a time,
waits, and prints the comparison. Exit codes as `submit --wait`: 0 every point
Succeeded, 1 a point failed, 2 invalid spec (nothing submitted), 3 timeout, 4 a point
was cancelled. `--local` runs the points one after another with the `ftjobs run` trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ftjobs.api.validation import SpecError
from ftjobs.cli.job_commands import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_SUCCEEDED,
    EXIT_TIMEOUT,
    Context,
    Format,
    Kubeconfig,
    Namespace,
    SetOption,
    Timeout,
    _client,
    _fail,
)
from ftjobs.cli.output import err, out, print_spec_error
from ftjobs.cli.run_command import run_with_progress
from ftjobs.sdk.client import Client, ClientError, JobView, summary_of
from ftjobs.sdk.compare import Comparison, Run, compare, load_run_dir, run_from_summary
from ftjobs.sdk.local import local_config
from ftjobs.sdk.sweep import (
    LABEL_SWEEP,
    SweepPoint,
    SweepTimeout,
    parse_grid,
    run_on_cluster,
    sweep_points,
)

Metric = Annotated[
    str | None,
    typer.Option(
        "--metric", help="Metric to rank by (default: the first the runs report, e.g. accuracy)."
    ),
]
Minimize = Annotated[
    bool | None,
    typer.Option(
        "--minimize/--maximize",
        help="Whether smaller is better (default: smaller for loss/perplexity, else larger).",
    ),
]
Report = Annotated[
    Path | None, typer.Option("--report", help="Also write the comparison as JSON to this file.")
]


# --- runs --------------------------------------------------------------------------------


def _run_of_view(view: JobView, summary: dict[str, Any] | None = None) -> Run:
    """A cluster job as a Run: its summary.json where readable, else its status."""
    summary = summary if summary is not None else summary_of(view)
    wall = None
    start, end = view.status.start_time, view.status.completion_time
    if summary.get("wallSeconds") is None and start and end:
        from datetime import datetime

        wall = (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).seconds
    run = run_from_summary(
        summary,
        source=f"{view.namespace}/{view.name}",
        phase=view.phase,
        spec=view.raw.get("spec") or {},
        wall_s=wall,
    )
    if run.final_loss is None and view.status.progress and view.status.progress.loss is not None:
        run = Run(**{**run.__dict__, "final_loss": float(view.status.progress.loss)})
    return run


def _local_runs(path: Path) -> list[Run]:
    """A run folder, or a folder of run folders (e.g. a local sweep's `<output>/local`)."""
    try:
        return [load_run_dir(path)]
    except FileNotFoundError:
        children = sorted(p for p in path.iterdir() if p.is_dir())
        runs = []
        for child in children:
            try:
                runs.append(load_run_dir(child))
            except FileNotFoundError:
                continue
        if not runs:
            raise
        return runs


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def comparison_table(comp: Comparison, title: str = "") -> Table:
    arrow = "lower is better" if comp.lower_is_better else "higher is better"
    table = Table(title=title or None, caption=f"★ best {comp.metric} ({arrow})")
    for column in ("", "run", "phase", comp.metric, "base", "final loss", "steps", "wall"):
        numeric = column in (comp.metric, "base", "final loss", "steps", "wall")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for path in comp.differing:
        table.add_column(path, overflow="fold")
    for i, run in enumerate(comp.runs):
        metric = run.metrics.get(comp.metric)
        base = run.base_metrics.get(comp.metric)
        table.add_row(
            "★" if i == comp.best else "",
            run.name,
            run.phase,
            "-" if metric is None else f"{metric:.4f}",
            "-" if base is None else f"{base:.4f}",
            "-" if run.final_loss is None else f"{run.final_loss:.4f}",
            _format(run.steps),
            "-" if run.wall_s is None else f"{run.wall_s:.0f}s",
            *(_format(comp.value(run, p)) for p in comp.differing),
            style="bold green" if i == comp.best else None,
        )
    return table


def _show(comp: Comparison, title: str, output: Format, report: Path | None) -> None:
    if report is not None:
        report.write_text(json.dumps(comp.as_dict(), indent=2) + "\n")
        err.print(f"comparison written to {report}", markup=False)
    if output == Format.table:
        out.print(comparison_table(comp, title))
        if comp.best is not None:
            best = comp.runs[comp.best]
            out.print(f"best: {best.name} ({comp.metric} {best.metrics[comp.metric]:.4f})")
    elif output == Format.json:
        typer.echo(json.dumps(comp.as_dict(), indent=2))
    else:
        from ftjobs.sdk import yaml_output

        typer.echo(yaml_output.dump(comp.as_dict()), nl=False)


# --- compare -----------------------------------------------------------------------------


def compare_cmd(
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="FineTuneJob names, or output folders of local runs."),
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Every FineTuneJob of this sweep (its label).")
    ] = None,
    metric: Metric = None,
    minimize: Minimize = None,
    output: Annotated[Format, typer.Option("--output", "-o", help="Output format.")] = (
        Format.table
    ),
    report: Report = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Compare runs: metric (best marked), final loss, steps, wall time, differing settings."""
    if not runs and not sweep:
        raise typer.BadParameter("give runs to compare, or --sweep NAME")
    found: list[Run] = []
    client: Client | None = None
    for target in runs or []:
        path = Path(target).expanduser()
        if path.is_dir():
            try:
                found += _local_runs(path)
            except (FileNotFoundError, ValueError) as exc:
                _fail(str(exc))
            continue
        client = client or _client(kubeconfig, context, namespace)
        try:
            found.append(_run_of_view(client.get(target, namespace=namespace)))
        except ClientError as exc:
            _fail(f"{target}: not a run folder, and {exc}")
    if sweep:
        client = client or _client(kubeconfig, context, namespace)
        try:
            views = [v for v in client.list(namespace=namespace) if _sweep_of(v) == sweep]
        except ClientError as exc:
            _fail(str(exc))
        if not views:
            _fail(f"no FineTuneJob has label {LABEL_SWEEP}={sweep}")
        found += [_run_of_view(v) for v in sorted(views, key=_point_index)]
    _show(compare(found, metric, minimize), "", output, report)


def _sweep_of(view: JobView) -> str | None:
    labels = (view.raw.get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_SWEEP)
    return str(value) if value is not None else None


def _point_index(view: JobView) -> tuple[int, str]:
    labels = (view.raw.get("metadata") or {}).get("labels") or {}
    raw = str(labels.get(f"{LABEL_SWEEP}-point", ""))
    return (int(raw) if raw.isdigit() else 1 << 30, view.name)


# --- sweep -------------------------------------------------------------------------------


def sweep_cmd(
    file: Annotated[str, typer.Argument(help="FineTuneJob YAML file (the base of every point).")],
    grid: Annotated[
        list[str],
        typer.Option(
            "--grid",
            help="PATH=V1,V2,...: values of one spec field (camelCase, as --set). Repeat for "
            "more axes; the sweep is their cartesian product.",
        ),
    ],
    set_: SetOption = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run the points here, one after another (ftjobs run).")
    ] = False,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, help="Points running at once on the cluster.")
    ] = 2,
    output_dir: Annotated[
        str | None,
        typer.Option("--output-dir", help="--local: output directory (default: storage.output)."),
    ] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="--local: processes.")] = 1,
    metric: Metric = None,
    minimize: Minimize = None,
    report: Report = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the points and their names; run nothing.")
    ] = False,
    timeout: Timeout = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Run a grid of FineTuneJobs and print the comparison, the best run marked.

    Example: ftjobs sweep job.yaml --grid hyperparameters.learningRate=1e-5,3e-5,1e-4.
    Exit codes as `submit --wait`: 0 all Succeeded, 1 a point failed, 2 invalid spec
    (nothing submitted), 3 timeout, 4 a point was cancelled.
    """
    try:
        name, points = sweep_points(file, parse_grid(grid), set_ or ())
    except SpecError as exc:
        print_spec_error(exc, file)
        raise typer.Exit(EXIT_INVALID) from None
    err.print(f"sweep {name}: {len(points)} point(s)", markup=False)
    for p in points:
        err.print(f"  {p.name}: {' '.join(p.overrides)}", markup=False)
    if dry_run:
        return
    if local:
        runs, code = _sweep_local(points, output_dir, nproc)
    else:
        runs, code = _sweep_cluster(
            points, namespace, parallel, timeout, kubeconfig=kubeconfig, context=context
        )
    _show(compare(runs, metric, minimize), f"sweep {name}", Format.table, report)
    if code != EXIT_SUCCEEDED:
        raise typer.Exit(code)


def _sweep_local(
    points: list[SweepPoint], output_dir: str | None, nproc: int
) -> tuple[list[Run], int]:
    runs: list[Run] = []
    code = EXIT_SUCCEEDED
    for i, point in enumerate(points, 1):
        try:
            config = local_config(point.job, nproc=nproc, nnodes=1, output=output_dir)
        except SpecError as exc:
            print_spec_error(exc, point.name)
            raise typer.Exit(EXIT_INVALID) from None
        folder = Path(config.output_uri.removeprefix("file://"))
        done = config.output_uri.startswith("file://") and (folder / "summary.json").is_file()
        if done:
            err.print(f"[{i}/{len(points)}] {point.name}: already finished", markup=False)
        else:
            err.print(
                f"[{i}/{len(points)}] {point.name}: {' '.join(point.overrides)}", markup=False
            )
            result = run_with_progress(config, nproc=nproc)
            if result.exit_code != 0:
                err.print(
                    f"{point.name} failed (exit {result.exit_code}): {result.message}",
                    markup=False,
                    style="red",
                )
                code = EXIT_FAILED
        try:
            run = load_run_dir(folder)
            runs.append(run if done or run.phase != "Incomplete" else _failed(run))
        except FileNotFoundError:  # failed before its first record, or not a local folder
            runs.append(Run(name=point.name, source=config.output_uri, phase="Failed"))
    return runs, code


def _failed(run: Run) -> Run:
    return Run(**{**run.__dict__, "phase": "Failed"})


def _sweep_cluster(
    points: list[SweepPoint],
    namespace: str | None,
    parallel: int,
    timeout: float | None,
    *,
    kubeconfig: str | None,
    context: str | None,
) -> tuple[list[Run], int]:
    client = _client(kubeconfig, context, namespace)

    def on_update(view: JobView) -> None:
        p = view.status.progress
        step = f" step {p.step}/{p.total_steps}" if p and p.step is not None else ""
        err.print(f"{view.name}: {view.phase}{step}", markup=False)

    code = EXIT_SUCCEEDED
    try:
        views = run_on_cluster(
            client,
            points,
            namespace=namespace,
            parallel=parallel,
            timeout=timeout,
            on_update=on_update,
        )
    except SweepTimeout as exc:
        views, code = exc.views, EXIT_TIMEOUT
        err.print(f"timed out: {exc}; the jobs keep running", markup=False, style="red")
    except SpecError as exc:
        print_spec_error(exc, "sweep")
        raise typer.Exit(EXIT_INVALID) from None
    except ClientError as exc:
        _fail(str(exc))
    phases = {v.phase for v in views.values()}
    if code == EXIT_SUCCEEDED and "Failed" in phases:
        code = EXIT_FAILED
    elif code == EXIT_SUCCEEDED and "Cancelled" in phases:
        code = EXIT_CANCELLED
    return [_run_of_view(v) for v in views.values()], code


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
    app.command("sweep")(sweep_cmd)
