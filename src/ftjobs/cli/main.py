"""The `ftjobs` command line: one typer `app`, each command group in its own module.

Adding commands (for teammates): write `src/ftjobs/cli/<group>_commands.py` with

    def register(app: typer.Typer) -> None:
        app.command("run")(run)            # top-level commands, or
        app.add_typer(sub, name="queue")   # a sub-command group

then import it below and add one `<group>_commands.register(app)` line. Command modules
call the SDK (`ftjobs.sdk`) and the API models only (an import-linter contract), print
results with rich on stdout and problems on stderr (`ftjobs.cli.output`), and exit 0 on
success, 1 on a user error (bad spec, failed job), 2 on a usage error (typer's own).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ftjobs.cli import (
    controller_command,
    job_commands,
    report_command,
    run_command,
    spec_commands,
    sweep_commands,
)
from ftjobs.cli.options import FtjobsTyper

app = FtjobsTyper(
    name="ftjobs",
    help="Fine-tune language models on Kubernetes from one FineTuneJob spec.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        spec_commands.version()
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Fine-tune language models on Kubernetes from one FineTuneJob spec."""


spec_commands.register(app)
controller_command.register(app)
job_commands.register(app)
run_command.register(app)
sweep_commands.register(app)
report_command.register(app)
