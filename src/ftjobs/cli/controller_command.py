"""`ftjobs controller ...`: run the operator (same flags as `python -m ftjobs.controller`).

The CLI does not import the controller (an import-linter contract keeps the CLI on the
SDK, and the controller pulls in kopf): the command replaces this process with
`python -m ftjobs.controller`, so signals, exit status and logs are the controller's own.
"""

from __future__ import annotations

import os
import sys

import typer


def controller(ctx: typer.Context) -> None:
    """Run the FineTuneJob controller: --namespace NS (repeatable) or --all-namespaces.

    Other flags: --kubeconfig, --workers, --metrics-port, --health-port,
    --[no-]leader-elect, --lease-namespace, --lease-duration, --image; see --help.
    """
    argv = [sys.executable, "-m", "ftjobs.controller", *ctx.args]
    os.execv(sys.executable, argv)


def register(app: typer.Typer) -> None:
    app.command(
        "controller",
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            "help_option_names": [],
        },
    )(controller)
