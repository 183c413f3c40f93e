"""Shared option types and the help polish every command gets.

`PolishedCommand` (the class of every `ftjobs` command, via `FtjobsTyper.command`) gives
options metavars a user reads (`--kubeconfig FILE`, `--set PATH=VALUE`, flags none)
instead of Python types, and joins docstring lines within a paragraph so help text
wraps to the terminal instead of keeping the source file's line breaks.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

# Option name (click's, snake_case) -> what the value is.
METAVARS = {
    "set_": "PATH=VALUE",
    "kubeconfig": "FILE",
    "context": "NAME",
    "namespace": "NS",
    "timeout": "SECONDS",
    "min_metric": "NAME=VALUE",
    "max_metric": "NAME=VALUE",
    "summary": "FILE",
    "image": "IMAGE",
    "name": "NAME",
    "output": "DIR|URI",
    "params": "COUNT",
    "gpu_memory": "QUANTITY",
    "attempt": "N",
    "rank": "N",
    "tail": "N",
    "nproc": "N",
    "nnodes_sim": "N",
}


def _unwrap(text: str) -> str:
    """Lines of one paragraph joined (blank lines and indented blocks kept)."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    out = []
    for para in paragraphs:
        lines = para.splitlines()
        if any(line.startswith("  ") for line in lines[1:]):
            out.append(para)  # a table or an example: keep its lines
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


SET_EXAMPLES = (
    "--set examples (PATH=VALUE under spec, camelCase; lists by index; the value is YAML):\n\n"
    "  --set hyperparameters.learningRate=5e-5\n"
    "  --set dataset.train=s3://data/v42/train.jsonl\n"
    "  --set resources.tolerations[0].key=gpu"
)
ARGUMENT_METAVARS = {"file": "FILE", "files": "FILE...", "name": "NAME"}


def _polish(command: Any) -> None:
    if command.help:
        command.help = _unwrap(command.help)
    if any(p.name == "set_" for p in command.params) and not command.epilog:
        command.epilog = SET_EXAMPLES
    for param in command.params:
        if param.param_type_name == "argument" and param.metavar is None:
            param.metavar = ARGUMENT_METAVARS.get(param.name or "")
            continue
        # Duck-typed: typer builds its commands from its own vendored copy of click.
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        desc = getattr(param, "type_descriptor", None)
        if getattr(param, "is_flag", False) or getattr(desc, "annotation", None) is bool:
            param.metavar = ""
            continue
        if getattr(desc, "is_choice", False):
            continue  # table|yaml|json says it best
        param.metavar = METAVARS.get(param.name or "", (param.name or "value").upper())


def _help_flag(option: Any) -> Any:
    if option is not None:
        option.metavar = ""  # a flag, not a <bool> value
    return option


class PolishedCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _polish(self)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_flag(super().get_help_option(ctx))


class PolishedGroup(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _polish(self)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_flag(super().get_help_option(ctx))


class FtjobsTyper(typer.Typer):
    """typer.Typer whose commands are PolishedCommands unless they ask for another class."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", PolishedCommand)
        return super().command(*args, **kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", PolishedGroup)
        super().__init__(*args, **kwargs)


Kubeconfig = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
]
