"""Consoles shared by the command modules: results on stdout, problems on stderr.

Soft wrapping keeps each message on one line (grep-able, and stable in tests); markup is
off for anything that echoes user input, which may contain `[brackets]`.
"""

from __future__ import annotations

from rich.console import Console

from ftjobs.api.validation import SpecError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_spec_error(exc: SpecError, source: str | None = None) -> None:
    """One line per problem: `FILE: PATH: MESSAGE`."""
    where = source or exc.source
    for error in exc.errors:
        line = f":{error.line}" if error.line else ""
        prefix = f"{where}{line}: " if where else ""
        err.print(f"{prefix}{error}", markup=False, style="red")
