"""Commands on a cluster: submit, status, list, logs, wait, cancel, check, preflight.

They call the SDK (`ftjobs.sdk.client.Client`) only. Exit codes of `submit --wait` and
`wait` (for CI): 0 Succeeded (and every --min-metric/--max-metric met), 1 Failed (the
reason is printed) or a metric below its bar, 2 invalid spec or failed preflight,
3 timeout, 4 cancelled.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from ftjobs.api.quantity import quantity_bytes
from ftjobs.api.validation import SpecError
from ftjobs.cli.job_views import WaitDisplay, events_table, metrics_table, status_table
from ftjobs.cli.output import err, out, print_spec_error
from ftjobs.sdk import yaml_output
from ftjobs.sdk.client import Client, ClientError, JobView, WaitTimeout, summary_of
from ftjobs.sdk.metrics_gate import evaluate, fine_tuned_metrics, parse_thresholds
from ftjobs.sdk.spec import load_job

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_TIMEOUT = 3
EXIT_CANCELLED = 4


class Format(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


# --- shared options ----------------------------------------------------------------------

Kubeconfig = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).", envvar=None
    ),
]
Context = Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.")]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace (default: the context's, else default)."),
]
Output = Annotated[Format, typer.Option("--output", "-o", help="Output format.")]
Timeout = Annotated[
    float | None,
    typer.Option("--timeout", help="Give up waiting after SECONDS (exit 3).", min=0),
]
MinMetric = Annotated[
    list[str] | None,
    typer.Option(
        "--min-metric",
        help="NAME=VALUE: fail (exit 1) unless the fine-tuned model's NAME >= VALUE. Repeatable.",
    ),
]
MaxMetric = Annotated[
    list[str] | None,
    typer.Option(
        "--max-metric",
        help="NAME=VALUE: fail (exit 1) unless the fine-tuned model's NAME <= VALUE "
        "(e.g. perplexity). Repeatable.",
    ),
]
SummaryOut = Annotated[
    Path | None,
    typer.Option("--summary", help="Write the job's summary (summary.json) to this file."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field: PATH=VALUE, camelCase, under spec; repeatable (examples below).",
    ),
]


def _client(kubeconfig: str | None, context: str | None, namespace: str | None) -> Client:
    try:
        return Client(kubeconfig=kubeconfig, context=context, namespace=namespace)
    except ClientError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    err.print(f"error: {message}", markup=False, style="red")
    raise typer.Exit(code)


def _dump(doc: Any, fmt: Format) -> None:
    if fmt == Format.json:
        typer.echo(json.dumps(doc, indent=2, default=str))
    else:
        typer.echo(yaml_output.dump(doc), nl=False)


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as `kubectl get -o yaml` shows it (server-side apply bookkeeping is noise)."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def _thresholds(minimums: list[str] | None, maximums: list[str] | None) -> Any:
    try:
        return parse_thresholds(minimums or (), maximums or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _finish(
    view: JobView,
    minimums: list[str] | None,
    maximums: list[str] | None,
    summary_path: Path | None,
) -> None:
    """Print the outcome, write the summary, apply metric gates; exit with the CI code."""
    summary = summary_of(view) if summary_path or minimums or maximums else None
    if summary_path is not None and summary is not None:
        summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        err.print(f"summary written to {summary_path}", markup=False)
    if view.phase == "Cancelled":
        _fail(f"{view.name} was cancelled: {view.reason}", EXIT_CANCELLED)
    if view.phase != "Succeeded":
        _fail(f"{view.name} {view.phase}: {view.reason or 'no reason recorded'}", EXIT_FAILED)
    out.print(f"{view.name} Succeeded", markup=False, style="green")
    if view.status.output_model:
        out.print(f"model: {view.status.output_model}", markup=False)
    if summary is not None:
        _gate(summary, minimums, maximums)


def _gate(summary: dict[str, Any], minimums: list[str] | None, maximums: list[str] | None) -> None:
    thresholds = _thresholds(minimums, maximums)
    if not thresholds:
        return
    results = evaluate(thresholds, fine_tuned_metrics(summary))
    for r in results:
        actual = "missing" if r.actual is None else f"{r.actual:g}"
        mark = "[green]✓[/]" if r.passed else "[red]✗[/]"
        out.print(f"{mark} {r.threshold} (fine-tuned: {actual})")
    if not all(r.passed for r in results):
        _fail("metric threshold not met", EXIT_FAILED)


def _wait(client: Client, name: str, namespace: str | None, timeout: float | None) -> JobView:
    try:
        with WaitDisplay() as display:
            return client.wait(name, namespace=namespace, timeout=timeout, on_update=display)
    except WaitTimeout as exc:
        _fail(f"timed out: {exc}", EXIT_TIMEOUT)
    except ClientError as exc:
        _fail(str(exc))


# --- commands ----------------------------------------------------------------------------


def submit(
    file: Annotated[str, typer.Argument(help="FineTuneJob YAML file ('-' for stdin).")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the end; exit code says how.")] = (
        False
    ),
    timeout: Timeout = None,
    set_: SetOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Job name (overrides the file's).")] = (
        None
    ),
    generate_name: Annotated[
        bool,
        typer.Option("--generate-name", help="Let the server add a unique suffix to the name."),
    ] = False,
    namespace: Namespace = None,
    min_metric: MinMetric = None,
    max_metric: MaxMetric = None,
    summary: SummaryOut = None,
    preflight: Annotated[
        bool, typer.Option(help="Check GPUs, memory, Secret and storage before creating.")
    ] = True,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Validate, preflight and create a FineTuneJob; print its name (--wait: for CI).

    Idempotent: submitting the same name with the same spec again changes nothing; a
    different spec under an existing name is an error. With --wait, streams phase
    changes and progress and exits 0 Succeeded, 1 Failed, 2 invalid spec, 3 timeout,
    4 cancelled.
    """
    if name and generate_name:
        raise typer.BadParameter("--name and --generate-name exclude each other")
    _thresholds(min_metric, max_metric)  # bad thresholds fail before anything is created
    try:
        job = load_job(file, set_ or ())
    except SpecError as exc:
        print_spec_error(exc, file)
        raise typer.Exit(EXIT_INVALID) from None
    if name:
        job.metadata.name = name
    client = _client(kubeconfig, context, namespace)
    ns = namespace or job.metadata.namespace or client.namespace
    if preflight:
        from ftjobs.sdk.preflight import preflight as run_preflight

        report = run_preflight(job, client, namespace=ns)
        for check in report.checks:
            if check.status in ("fail", "warn"):
                style = "red" if check.status == "fail" else "yellow"
                err.print(f"preflight {check.name}: {check.message}", markup=False, style=style)
        if not report.ok:
            _fail("preflight failed; nothing was created (--no-preflight to skip)", EXIT_INVALID)
    try:
        result = client.submit(job, namespace=ns, generate_name=generate_name)
    except SpecError as exc:
        print_spec_error(exc, file)
        raise typer.Exit(EXIT_INVALID) from None
    except ClientError as exc:
        _fail(str(exc))
    verb = "created" if result.created else "unchanged"
    out.print(f"finetunejob.ftjobs.dev/{result.name} {verb}", markup=False)
    if wait:
        view = _wait(client, result.name, result.namespace, timeout)
        _finish(view, min_metric, max_metric, summary)


def wait(
    name: Annotated[str, typer.Argument(help="FineTuneJob name.")],
    timeout: Timeout = None,
    namespace: Namespace = None,
    min_metric: MinMetric = None,
    max_metric: MaxMetric = None,
    summary: SummaryOut = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Wait for a FineTuneJob to end, showing progress; exit codes as `submit --wait`."""
    _thresholds(min_metric, max_metric)
    client = _client(kubeconfig, context, namespace)
    view = _wait(client, name, namespace, timeout)
    _finish(view, min_metric, max_metric, summary)


def status(
    name: Annotated[str, typer.Argument(help="FineTuneJob name.")],
    namespace: Namespace = None,
    output: Output = Format.table,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot", help="Also draw loss.png, metrics.png, report.html (./NAME-report)."
        ),
    ] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Show a FineTuneJob: phase, attempt, progress, checkpoint, metrics, model, events.

    Metrics compare the base model with the fine-tuned one; the last five events follow.
    """
    client = _client(kubeconfig, context, namespace)
    try:
        view = client.get(name, namespace=namespace)
        events = client.events(name, namespace=namespace)
    except ClientError as exc:
        _fail(str(exc))
    if output != Format.table:
        _dump(_without_managed_fields(view.raw), output)
        return
    out.print(status_table(view))
    if view.status.metrics and (view.status.metrics.base or view.status.metrics.fine_tuned):
        out.print(metrics_table(view))
    if events:
        out.print(events_table(events[-5:]))
    if plot:
        from ftjobs.cli.report_command import write_job_report

        write_job_report(view, None)


def list_(
    namespace: Namespace = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")
    ] = False,
    output: Output = Format.table,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """List FineTuneJobs with phase, progress, loss and restarts."""
    client = _client(kubeconfig, context, namespace)
    try:
        views = client.list(namespace=namespace, all_namespaces=all_namespaces)
    except ClientError as exc:
        _fail(str(exc))
    if output != Format.table:
        _dump({"items": [_without_managed_fields(v.raw) for v in views]}, output)
        return
    table = Table()
    if all_namespaces:
        table.add_column("NAMESPACE")
    for column in ("NAME", "PHASE", "ATTEMPT", "PROGRESS", "LOSS", "RESTARTS"):
        table.add_column(column)
    for v in views:
        p = v.status.progress
        progress = f"{p.percent}%" if p and p.percent is not None else "-"
        loss = f"{p.loss:.4f}" if p and p.loss is not None else "-"
        row = [v.name, v.phase, str(v.status.attempt), progress, loss, str(v.status.restarts)]
        table.add_row(*([v.namespace, *row] if all_namespaces else row))
    out.print(table)


def logs(
    name: Annotated[str, typer.Argument(help="FineTuneJob name.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream new lines.")] = False,
    rank: Annotated[
        int | None, typer.Option("--rank", min=0, help="Only this node rank (pod index).")
    ] = None,
    attempt: Annotated[
        int | None, typer.Option("--attempt", min=1, help="Attempt (default: the current one).")
    ] = None,
    tail: Annotated[int | None, typer.Option("--tail", min=0, help="Last N lines per pod.")] = (
        None
    ),
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Print the trainer logs of an attempt's pods, prefixed by rank when several."""
    client = _client(kubeconfig, context, namespace)
    try:
        for pod_rank, line in client.logs(
            name, namespace=namespace, rank=rank, attempt=attempt, follow=follow, tail_lines=tail
        ):
            prefix = f"[rank {pod_rank}] " if rank is None and pod_rank is not None else ""
            typer.echo(f"{prefix}{line}")
    except ClientError as exc:
        _fail(str(exc))


def cancel(
    name: Annotated[str, typer.Argument(help="FineTuneJob name.")],
    namespace: Namespace = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is Cancelled.")] = False,
    timeout: Timeout = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Stop a FineTuneJob (it ends in phase Cancelled; record and outputs stay).

    Sets the ftjobs.dev/cancel-requested annotation; the controller deletes the attempt's
    pods (they checkpoint on SIGTERM) and sets phase Cancelled.
    """
    client = _client(kubeconfig, context, namespace)
    try:
        view = client.cancel(name, namespace=namespace)
    except ClientError as exc:
        _fail(str(exc))
    if view.finished:
        out.print(f"{name} already {view.phase}", markup=False)
        return
    out.print(f"finetunejob.ftjobs.dev/{name} cancel requested", markup=False)
    if wait:
        final = _wait(client, name, namespace, timeout)
        out.print(f"{name} {final.phase}", markup=False)


def check(
    target: Annotated[
        str, typer.Argument(help="A summary.json file, or the name of a FineTuneJob.")
    ],
    min_metric: MinMetric = None,
    max_metric: MaxMetric = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """CI gate: exit 0 when the fine-tuned metrics meet every threshold, 1 otherwise."""
    if not (min_metric or max_metric):
        raise typer.BadParameter("give at least one --min-metric or --max-metric")
    path = Path(target)
    if path.is_file():
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            _fail(f"cannot read {path}: {exc}")
    else:
        client = _client(kubeconfig, context, namespace)
        try:
            view = client.get(target, namespace=namespace)
        except ClientError as exc:
            _fail(str(exc))
        if view.phase != "Succeeded":
            _fail(f"{target} is {view.phase}, not Succeeded")
        summary = summary_of(view)
    _gate(summary, min_metric, max_metric)


def preflight(
    file: Annotated[str, typer.Argument(help="FineTuneJob YAML file ('-' for stdin).")],
    set_: SetOption = None,
    namespace: Namespace = None,
    params: Annotated[
        float | None,
        typer.Option("--params", help="Model parameter count (e.g. 7e9) when it cannot be read."),
    ] = None,
    gpu_memory: Annotated[
        str | None,
        typer.Option("--gpu-memory", help="Memory per GPU (e.g. 80Gi) when nodes do not say."),
    ] = None,
    output: Output = Format.table,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the checks that need a cluster.")
    ] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Check what would make a job fail, before anything is created; exit 2 on a failure.

    Checks GPUs on the nodes, per-GPU memory for the model and ZeRO stage (DeepSpeed's
    estimator formulas), the Secrets, read/write access to storage and that hf:// repos
    and revisions exist. Without a usable kubeconfig (or with --offline) the cluster
    checks are skipped and the others still run.
    """
    from ftjobs.sdk.preflight import as_dicts
    from ftjobs.sdk.preflight import preflight as run_preflight

    try:
        job = load_job(file, set_ or ())
    except SpecError as exc:
        print_spec_error(exc, file)
        raise typer.Exit(EXIT_INVALID) from None
    client: Client | None = None
    if not offline:
        try:
            client = Client(kubeconfig=kubeconfig, context=context, namespace=namespace)
        except ClientError as exc:
            err.print(f"note: {exc}", markup=False, style="yellow")
            err.print("note: running the checks that need no cluster", style="yellow")
    report = run_preflight(
        job,
        client,
        namespace=namespace,
        params=int(params) if params else None,
        gpu_memory_bytes=_bytes(gpu_memory) if gpu_memory else None,
    )
    if output != Format.table:
        _dump({"ok": report.ok, "checks": as_dicts(report)}, output)
    else:
        table = Table(title=f"Preflight of {job.metadata.name or file}")
        for column in ("check", "result", "details"):
            table.add_column(column, overflow="fold")
        styles = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for c in report.checks:
            table.add_row(c.name, f"[{styles[c.status]}]{c.status}[/]", c.message)
        out.print(table)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


def _bytes(quantity: str) -> int:
    try:
        return quantity_bytes(quantity)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def register(app: typer.Typer) -> None:
    app.command()(submit)
    app.command()(status)
    app.command("list")(list_)
    app.command()(logs)
    app.command()(wait)
    app.command()(cancel)
    app.command()(check)
    app.command()(preflight)
