"""Every CLI command against a corpus of user mistakes: an error message, never a traceback.

The commands run in-process (typer's CliRunner), where an exception that escapes a
command is exactly what would print a traceback in a terminal: `result.exception` is
set to it instead of to SystemExit. A negative control proves the check catches one.
Cluster commands must also say what to do (--kubeconfig, KUBECONFIG, --context, the
server URL) without client-library internals (urllib3's retry text).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from ftjobs.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
VALID = ROOT / "examples/quickstart-sentiment.yaml"
INVALID = ROOT / "tests/data/invalid/fp16-on-cpu.yaml"
LIBRARY_NOISE = ("Traceback", "urllib3", "MaxRetryError", "HTTPConnectionPool", "pydantic_core")
FILE_COMMANDS = ("validate", "render", "run", "submit", "preflight")
NAME_COMMANDS = ("status", "logs", "wait", "cancel", "check")


def failure_of(result: Result) -> str | None:
    """Why `result` counts as a crash: an escaped exception or library noise; else None."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        return f"escaped {type(exc).__name__}: {exc}"
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    for noise in LIBRARY_NOISE:
        if noise in text:
            return f"printed {noise!r}: {text[-600:]}"
    return None


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Bad spec files, by what is wrong with them."""
    bad = {
        "missing": tmp_path / "nope.yaml",
        "directory": tmp_path,
        "empty": tmp_path / "empty.yaml",
        "not-yaml": tmp_path / "broken.yaml",
        "list": tmp_path / "list.yaml",
        "binary": tmp_path / "binary.yaml",
        "wrong-kind": tmp_path / "pod.yaml",
    }
    bad["empty"].write_text("")
    bad["not-yaml"].write_text("spec:\n  task: [unclosed\n\t- tab")
    bad["list"].write_text("- a\n- b\n")
    bad["binary"].write_bytes(bytes(range(256)) * 4)
    bad["wrong-kind"].write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    return {name: str(path) for name, path in bad.items()} | {"invalid-spec": str(INVALID)}


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    yield


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=dict(os.environ))


def test_negative_control_an_escaped_exception_is_caught() -> None:
    crashing = typer.Typer()

    @crashing.command()
    def boom() -> None:
        raise KeyError("internal")

    @crashing.command()
    def noisy() -> None:
        typer.echo("urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host=...)")

    assert failure_of(CliRunner().invoke(crashing, ["boom"])) is not None
    assert failure_of(CliRunner().invoke(crashing, ["noisy"])) is not None


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_file_commands_on_bad_files(command: str, files: dict[str, str], no_cluster: None) -> None:
    for what, path in files.items():
        result = invoke(command, path)
        assert failure_of(result) is None, (command, what, failure_of(result))
        assert result.exit_code != 0, (command, what, result.output)


@pytest.mark.parametrize(
    "override",
    ["noequals", "spec.nothing.here=1", "hyperparameters.epochs=many", "=3", "a..b=1"],
)
@pytest.mark.parametrize("command", ["validate", "render", "run", "preflight"])
def test_bad_set_overrides(command: str, override: str, no_cluster: None) -> None:
    result = invoke(command, str(VALID), "--set", override)
    assert failure_of(result) is None, (command, override, failure_of(result))
    assert result.exit_code != 0


def test_run_with_a_process_count_the_batch_does_not_divide_over() -> None:
    # The quickstart's global batch does not divide over 3 processes: the cluster's message.
    result = invoke("run", str(VALID), "--nproc", "3")
    assert failure_of(result) is None, failure_of(result)
    assert result.exit_code == 1
    assert "spec.hyperparameters.globalBatchSize" in result.output
    assert "--nproc" in result.output


@pytest.mark.parametrize("command", (*NAME_COMMANDS, "list", "submit"))
def test_cluster_commands_without_a_kubeconfig_say_what_to_do(
    command: str, no_cluster: None
) -> None:
    args = [command, str(VALID)] if command == "submit" else [command]
    args += ["some-job"] if command in NAME_COMMANDS else []
    if command == "check":
        args += ["--min-metric", "accuracy=0.5"]
    result = invoke(*args)
    assert failure_of(result) is None, failure_of(result)
    assert result.exit_code != 0
    assert "--kubeconfig" in result.output and "KUBECONFIG" in result.output, result.output


def _kubeconfig(path: Path, server: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize("command", (*NAME_COMMANDS, "list"))
def test_cluster_commands_against_an_unreachable_server(command: str, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")  # discard port: refused
    args = [command] + (["some-job"] if command in NAME_COMMANDS else [])
    args += ["--kubeconfig", kubeconfig]
    if command in ("wait", "cancel"):
        args += ["--timeout", "3"]
    if command == "check":
        args += ["--min-metric", "accuracy=0.5"]
    result = invoke(*args)
    assert failure_of(result) is None, failure_of(result)
    assert result.exit_code != 0
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:9" in result.output
    assert "--context" in result.output


def test_kubeconfig_mistakes_name_the_fix(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("this: [is not a kubeconfig")
    result = invoke("list", "--kubeconfig", str(garbage))
    assert failure_of(result) is None and result.exit_code == 1
    assert "kubectl config view" in result.output

    kubeconfig = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")
    result = invoke("list", "--kubeconfig", kubeconfig, "--context", "prod")
    assert failure_of(result) is None and result.exit_code == 1
    assert "context 'prod' is not in the kubeconfig (ctx)" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["check", "job", "--min-metric", "accuracy"],
        ["check", "job", "--min-metric", "accuracy=high"],
        ["preflight", str(VALID), "--gpu-memory", "lots", "--offline"],
        ["render", str(VALID), "--attempt", "0"],
        ["logs", "job", "--rank", "-1"],
        ["controller", "--workers", "many"],
        ["nosuchcommand"],
    ],
)
def test_bad_options(args: list[str], no_cluster: None) -> None:
    result = invoke(*args)
    assert failure_of(result) is None, (args, failure_of(result))
    assert result.exit_code != 0, (args, result.output)
