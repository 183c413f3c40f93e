"""The cluster commands' offline behaviour through typer's CliRunner (real commands):
help text, invalid specs (exit 2 before any connection), metric gates on summary files,
kubeconfig errors. Their cluster behaviour is tests/integration/test_submit.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ftjobs.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "spam-classification.yaml"
COMMANDS = ["submit", "status", "list", "logs", "wait", "cancel", "check", "preflight"]
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if command not in ("list", "check"):
        assert "--namespace" in result.output


def test_top_level_help_lists_the_commands() -> None:
    result = run("--help")
    for command in COMMANDS:
        assert command in result.output


def test_submit_invalid_spec_exits_2_before_connecting(tmp_path: Path) -> None:
    # No kubeconfig anywhere: the spec error must come first.
    env = {
        "KUBECONFIG": str(tmp_path / "missing"),
        "HOME": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": "",
    }
    result = run(
        "submit", str(EXAMPLE), "--set", "hyperparameters.learningRate=0", "--wait", env=env
    )
    assert result.exit_code == 2, result.output
    assert "spec.hyperparameters.learningRate" in result.output


def test_submit_without_a_cluster_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        "KUBECONFIG": str(tmp_path / "missing"),
        "HOME": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": "",
    }
    result = run("submit", str(EXAMPLE), env=env)
    assert result.exit_code == 1
    assert "kubeconfig" in result.output.lower()


def test_name_and_generate_name_exclude_each_other() -> None:
    result = run("submit", str(EXAMPLE), "--name", "a", "--generate-name")
    assert result.exit_code == 2


def test_bad_threshold_is_a_usage_error() -> None:
    result = run("submit", str(EXAMPLE), "--min-metric", "accuracy")
    assert result.exit_code == 2
    assert "NAME=NUMBER" in result.output


def summary(tmp_path: Path) -> Path:
    path = tmp_path / "summary.json"
    doc = {"metrics": {"base": {"accuracy": 0.6}, "fineTuned": {"accuracy": 0.91, "loss": 0.2}}}
    path.write_text(json.dumps(doc))
    return path


def test_check_passes_when_every_threshold_is_met(tmp_path: Path) -> None:
    result = run(
        "check", str(summary(tmp_path)), "--min-metric", "accuracy=0.9", "--max-metric", "loss=0.3"
    )
    assert result.exit_code == 0, result.output
    assert "accuracy >= 0.9 (fine-tuned: 0.91)" in result.output


def test_check_fails_below_the_bar_or_on_a_missing_metric(tmp_path: Path) -> None:
    below = run("check", str(summary(tmp_path)), "--min-metric", "accuracy=0.95")
    assert below.exit_code == 1
    missing = run("check", str(summary(tmp_path)), "--min-metric", "f1=0.5")
    assert missing.exit_code == 1 and "missing" in missing.output


def test_check_needs_a_threshold(tmp_path: Path) -> None:
    assert run("check", str(summary(tmp_path))).exit_code == 2


def test_cli_doc_covers_every_command_and_exit_code() -> None:
    from ftjobs.cli import job_commands

    doc = (ROOT / "docs" / "cli.md").read_text()
    for command in COMMANDS:
        assert f"`ftjobs {command} " in doc, command
    codes = {
        job_commands.EXIT_SUCCEEDED: "Succeeded",
        job_commands.EXIT_FAILED: "Failed",
        job_commands.EXIT_INVALID: "invalid spec",
        job_commands.EXIT_TIMEOUT: "timeout",
        job_commands.EXIT_CANCELLED: "cancelled",
    }
    for code, word in codes.items():
        assert f"**{code}** {word}" in doc, (code, word)
