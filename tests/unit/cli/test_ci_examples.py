"""The CI examples call commands and options that exist, in the documented way."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ftjobs.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
CI = {
    "github": ROOT / "examples" / "ci" / "github-actions.yaml",
    "gitlab": ROOT / "examples" / "ci" / "gitlab-ci.yml",
}


def invocations(path: Path) -> list[list[str]]:
    """Every `ftjobs ...` command line in the file's shell steps."""
    text = path.read_text()
    # Folded YAML (>) joins lines; read the parsed document's strings instead of raw text.
    strings: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(text))
    out = []
    for s in strings:
        for line in s.replace("\\\n", " ").splitlines():
            for m in re.finditer(r"\bftjobs ([a-z]+)((?:\s+[^|;&>]+)?)", line):
                if m.group(1) in {"version"} or "==" in line:
                    continue
                out.append([m.group(1), *shlex.split(m.group(2), posix=True)])
    return out


@pytest.mark.parametrize("ci", sorted(CI))
def test_every_option_used_exists(ci: str) -> None:
    calls = invocations(CI[ci])
    assert {c[0] for c in calls} >= {"validate", "submit", "preflight"}
    runner = CliRunner()
    for call in calls:
        help_text = runner.invoke(app, [call[0], "--help"]).output
        for arg in call[1:]:
            if arg.startswith("--") or re.fullmatch(r"-[a-z]", arg):
                assert arg.split("=")[0] in help_text, f"{ci}: ftjobs {call[0]} has no {arg}"


@pytest.mark.parametrize("ci", sorted(CI))
def test_retraining_waits_gates_and_names_the_job_after_the_commit(ci: str) -> None:
    submit = next(c for c in invocations(CI[ci]) if c[0] == "submit")
    for option in ("--wait", "--timeout", "--summary", "--min-metric", "--set", "--name"):
        assert option in submit, f"{ci}: submit lacks {option}"
    text = CI[ci].read_text()
    # The name is built from the commit SHA before submit uses it.
    assert re.search(r'name="spam-\$\{(GITHUB_SHA::8|CI_COMMIT_SHORT_SHA)\}"', text, re.I)
    dataset = submit[submit.index("--set") + 1]
    assert dataset.startswith("dataset.train=")
    assert "version" in dataset.lower()  # the dataset version comes in through --set
    assert "summary.json" in text.split("artifact", 1)[1]


def test_pull_requests_only_validate() -> None:
    gha = yaml.safe_load(CI["github"].read_text())
    triggers = gha[True]  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    assert gha["jobs"]["retrain"]["if"] == "github.event_name != 'pull_request'"
    gitlab = yaml.safe_load(CI["gitlab"].read_text())
    assert any("merge_request_event" in r["if"] for r in gitlab["validate"]["rules"])
    assert not any("merge_request_event" in r["if"] for r in gitlab["retrain"]["rules"])
