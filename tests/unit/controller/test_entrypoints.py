"""`ftjobs controller` and `python -m ftjobs.controller` parse the same flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ftjobs.controller.__main__ import parse_args


def test_flags() -> None:
    args = parse_args(["-n", "a", "-n", "b", "--no-leader-elect", "--workers", "3"])
    assert args.namespace == ["a", "b"] and not args.all_namespaces
    assert args.leader_elect is False and args.workers == 3
    assert parse_args(["--all-namespaces"]).all_namespaces


def test_namespace_scope_is_required() -> None:
    with pytest.raises(SystemExit):
        parse_args([])


def test_cli_command_runs_the_controller_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from ftjobs.cli.main import app; app()", "controller", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "--all-namespaces" in out.stdout and "--lease-duration" in out.stdout
