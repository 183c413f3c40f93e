"""Commands that work on spec files, no cluster needed: validate, render, crd, schema, version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

import typer

from ftjobs.api.constants import API_VERSION
from ftjobs.api.validation import SpecError
from ftjobs.cli.output import err, out, print_spec_error
from ftjobs.sdk import yaml_output
from ftjobs.sdk.manifests import render_manifests
from ftjobs.sdk.schema import crd_yaml, schema_json
from ftjobs.sdk.spec import load_job, validate_file

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field: PATH=VALUE, camelCase, under spec; repeatable (examples below).",
    ),
]


def validate(
    files: Annotated[list[str], typer.Argument(help="FineTuneJob YAML files ('-' for stdin).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print problems only.")] = False,
) -> None:
    """Check FineTuneJob files offline with the API server's rules; exit 1 if any is invalid."""
    invalid = 0
    for file in files:
        try:
            results = validate_file(file)
        except SpecError as exc:
            print_spec_error(exc, file)
            invalid += 1
            continue
        for label, result in results:
            if isinstance(result, SpecError):
                invalid += 1
                print_spec_error(result)
            elif not quiet:
                name = result.metadata.name or "(unnamed)"
                out.print(f"[green]✓[/] {_escape(label)}: {name} is valid")
    if invalid:
        err.print(f"[red]{invalid} invalid[/]")
        raise typer.Exit(1)


def render(
    file: Annotated[str, typer.Argument(help="FineTuneJob YAML file ('-' for stdin).")],
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace of the objects.")
    ] = None,
    attempt: Annotated[int, typer.Option(min=1, help="Attempt number to render.")] = 1,
    image: Annotated[str | None, typer.Option(help="Trainer image (overrides the default).")] = (
        None
    ),
    set_: SetOption = None,
) -> None:
    """Print the Kubernetes objects of one attempt as a YAML stream (for GitOps, review)."""
    try:
        job = load_job(file, set_ or ())
        objects = render_manifests(job, namespace=namespace, attempt=attempt, image=image)
    except SpecError as exc:
        print_spec_error(exc, file)
        raise typer.Exit(1) from None
    typer.echo(yaml_output.dump_all(objects), nl=False)


def crd() -> None:
    """Print the FineTuneJob CustomResourceDefinition (kubectl apply -f -)."""
    typer.echo(crd_yaml(), nl=False)


def schema() -> None:
    """Print the JSON Schema of a FineTuneJob document (for editors)."""
    typer.echo(schema_json(), nl=False)


def version() -> None:
    """Print the ftjobs version and the API version it speaks."""
    try:
        ours = package_version("ftjobs")
    except PackageNotFoundError:  # running from a source tree without an install
        ours = "unknown"
    typer.echo(f"ftjobs {ours} ({API_VERSION})")


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(render)
    app.command()(crd)
    app.command()(schema)
    app.command()(version)
