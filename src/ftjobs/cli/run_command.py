"""`ftjobs run FILE`: fine-tune locally with the same trainer a cluster pod runs.

On a machine with NVIDIA GPUs it uses every visible one (`--gpus N` picks fewer, `--gpus
0` the CPU): one process per GPU, NCCL, bf16 where the GPUs support it and the spec does
not set deepspeed.precision (ftjobs.sdk.local_gpus). Without a GPU: CPU processes, gloo.

A rich progress bar follows the job's progress.jsonl (step/total, loss, ETA); at the end a
table compares the base model with the fine-tuned one on the test split. The exit code
is the trainer's: 0, 75 (retriable: interrupted) or 78 (permanent: bad spec/data/model).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.api.validation import SpecError
from ftjobs.cli.output import err, out, print_spec_error
from ftjobs.sdk.local import LocalResult, local_config, run_local
from ftjobs.sdk.local_gpus import choose_gpus, local_precision, visible_gpus
from ftjobs.sdk.spec import load_job


def run(
    file: Annotated[str, typer.Argument(help="FineTuneJob YAML file.")],
    nproc: Annotated[
        int, typer.Option("--nproc", min=1, help="CPU processes per node (without GPUs).")
    ] = 1,
    gpus: Annotated[
        int | None,
        typer.Option(
            "--gpus",
            min=0,
            help="GPUs to train on, one process each (default: every visible GPU; 0: CPU).",
        ),
    ] = None,
    nnodes_sim: Annotated[
        int, typer.Option("--nnodes-sim", min=1, help="Nodes to simulate on 127.0.0.1.")
    ] = 1,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Output directory or URI (default: storage.output)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a field: PATH=VALUE, camelCase, under spec; repeatable "
            "(examples below).",
        ),
    ] = None,
) -> None:
    """Fine-tune on this machine (GPUs or CPU, DeepSpeed, torchrun-style processes)."""
    capabilities = visible_gpus()
    try:
        used = choose_gpus(gpus, len(capabilities))
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if used and nnodes_sim > 1:
        err.print("error: --nnodes-sim simulates nodes on the CPU; use --gpus 0", markup=False)
        raise typer.Exit(2)
    try:
        job = load_job(file, set_ or ())
        chosen = (
            job.spec.deepspeed.precision
            if "precision" in job.spec.deepspeed.model_fields_set
            else None
        )
        precision = local_precision(chosen, used, capabilities)
        config = local_config(
            job, nproc=nproc, nnodes=nnodes_sim, output=output, gpus=used, precision=precision
        )
    except SpecError as exc:
        print_spec_error(exc, file)
        raise typer.Exit(1) from None
    layout = (
        f"{used} GPU(s), {config.spec.deepspeed.precision}"
        if used
        else f"{nnodes_sim} node(s) x {nproc} CPU process(es)"
    )
    out.print(
        f"[bold]{config.name}[/]: {config.spec.task} on {layout}, output {config.output_uri}",
        markup=True,
    )
    result = run_with_progress(config, nproc=nproc, nnodes=nnodes_sim, gpus=used)
    _report(result)
    raise typer.Exit(result.exit_code)


def run_with_progress(
    config: TrainerConfig, *, nproc: int = 1, nnodes: int = 1, gpus: int = 0
) -> LocalResult:
    """`run_local` with a progress bar (step/total, loss, ETA) on stderr."""
    with Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[details]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("setup", total=None, details="")

        def on_progress(record: dict[str, Any]) -> None:
            if record.get("event") == "progress":
                loss = record.get("loss")
                details = f"loss {loss:.4f}" if isinstance(loss, float) else ""
                if record.get("eta"):
                    details += f"  eta {record['eta']}"
                bar.update(
                    task,
                    description="train",
                    completed=record.get("step", 0),
                    total=record.get("totalSteps"),
                    details=details,
                )
            elif record.get("event") == "checkpoint":
                bar.console.print(f"checkpoint step {record.get('step')}: {record.get('uri')}")

        result = run_local(config, nproc=nproc, nnodes=nnodes, gpus=gpus, on_progress=on_progress)
    return result


def _report(result: LocalResult) -> None:
    if result.exit_code != 0 or result.summary is None:
        kind = {75: "retriable", 78: "permanent"}.get(result.exit_code, "error")
        err.print(f"failed ({kind}, exit {result.exit_code}): {result.message}", markup=False)
        for log in result.logs:
            err.print(f"log: {log}", markup=False)
        return
    summary = result.summary
    metrics = summary.get("metrics", {})
    base, tuned = metrics.get("base", {}), metrics.get("fineTuned", {})
    table = Table(title=f"{summary.get('name')}: {metrics.get('split', 'test')} split")
    table.add_column("metric")
    table.add_column("base model", justify="right")
    table.add_column("fine-tuned", justify="right")
    for name in sorted(set(base) | set(tuned)):
        b = f"{base[name]:.4f}" if name in base else "-"
        t = f"{tuned[name]:.4f}" if name in tuned else "-"
        table.add_row(name, b, t)
    out.print(table)
    out.print(f"model: {summary.get('outputModel')}", markup=False)
    out.print(f"steps: {summary.get('steps')}  wall time: {result.wall_s:.1f}s", markup=False)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
