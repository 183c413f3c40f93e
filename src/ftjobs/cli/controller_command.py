"""`ftjobs controller ...`: run the operator (same flags as `python -m ftjobs.controller`).

The CLI does not import the controller (an import-linter contract keeps the CLI on the
SDK, and the controller pulls in kopf): the command checks its options here (so help and
errors look like every other command's), then replaces this process with
`python -m ftjobs.controller`, so signals, exit status and logs are the controller's own.
Flags this command does not declare are passed through unchanged.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ftjobs.cli.options import Kubeconfig


def controller_argv(
    *,
    namespace: list[str],
    all_namespaces: bool,
    kubeconfig: str | None,
    workers: int,
    metrics_port: int,
    health_port: int,
    leader_elect: bool,
    lease_namespace: str | None,
    image: str | None,
    extra: list[str],
) -> list[str]:
    """The `python -m ftjobs.controller` command line for these options."""
    argv = [sys.executable, "-m", "ftjobs.controller"]
    argv += ["--all-namespaces"] if all_namespaces else [f"--namespace={n}" for n in namespace]
    argv += [f"--workers={workers}", f"--metrics-port={metrics_port}"]
    argv += [f"--health-port={health_port}"]
    argv += ["--leader-elect" if leader_elect else "--no-leader-elect"]
    argv += [f"--kubeconfig={kubeconfig}"] if kubeconfig else []
    argv += [f"--lease-namespace={lease_namespace}"] if lease_namespace else []
    argv += [f"--image={image}"] if image else []
    return argv + extra


def controller(
    ctx: typer.Context,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", metavar="NS", help="Namespace to watch (repeatable)."),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")
    ] = False,
    kubeconfig: Kubeconfig = None,
    workers: Annotated[int, typer.Option(min=1, metavar="N", help="Concurrent reconciles.")] = 8,
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="/metrics port (0: off).")
    ] = 8080,
    health_port: Annotated[
        int,
        typer.Option(min=0, max=65535, metavar="PORT", help="/healthz and /readyz port (0: off)."),
    ] = 8081,
    leader_elect: Annotated[
        bool, typer.Option(help="Run only while holding the Lease (several replicas).")
    ] = True,
    lease_namespace: Annotated[
        str | None,
        typer.Option(
            metavar="NS", help="Lease namespace (default: $POD_NAMESPACE, else the first watched)."
        ),
    ] = None,
    image: Annotated[
        str | None, typer.Option(metavar="IMAGE", help="Trainer image for jobs that set none.")
    ] = None,
) -> None:
    """Run the FineTuneJob controller for some namespaces (-n, repeatable) or all (-A).

    More flags (--resync-seconds, --lease-name, --lease-duration, --lease-renew,
    --s3-endpoint, --s3-region, --verbose) pass through to `python -m ftjobs.controller`.
    """
    if bool(namespace) == all_namespaces:
        raise typer.BadParameter("give --namespace NS (repeatable) or --all-namespaces")
    argv = controller_argv(
        namespace=namespace or [],
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        workers=workers,
        metrics_port=metrics_port,
        health_port=health_port,
        leader_elect=leader_elect,
        lease_namespace=lease_namespace,
        image=image,
        extra=list(ctx.args),
    )
    os.execv(sys.executable, argv)


def register(app: typer.Typer) -> None:
    app.command(
        "controller",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(controller)
