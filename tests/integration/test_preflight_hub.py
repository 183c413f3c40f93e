"""`ftjobs preflight` on hf:// models and datasets, against a Hub-compatible server.

The checks run without a cluster (no kubeconfig): the cluster checks say they were
skipped, the hub checks ask the server (tests/fixtures/hub.py) through huggingface_hub.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ftjobs.cli.main import app
from ftjobs.sdk.preflight import preflight
from tests.builders import make_job
from tests.fixtures.hub import HubServer


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    from huggingface_hub import constants

    for ref in ("main", "v1"):
        model = tmp_path / "models/org/tiny" / ref
        model.mkdir(parents=True)
        (model / "config.json").write_text(json.dumps({"model_type": "bert", "ref": ref}))
    data = tmp_path / "datasets/org/toy/main"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text('{"text": "a", "label": "x"}\n')
    # This test shell runs with HF_HUB_OFFLINE=1 (read once, at import): switch it off.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    server = HubServer(tmp_path, token="unused").start()
    yield server
    server.stop()


def _checks(hub: HubServer, model: str, train: str) -> dict[str, tuple[str, str]]:
    job = make_job("hubjob").model(model).train(train).spec("hub", {"endpoint": hub.url})
    report = preflight(job.build(), None, check_storage=False)
    return {c.name: (c.status, c.message) for c in report.checks}


def test_hub_repos_and_revisions_are_checked(hub: HubServer) -> None:
    checks = _checks(hub, "hf://org/tiny@v1", "hf://datasets/org/toy/train.jsonl")
    assert checks["hub model"][0] == "ok"
    assert hub.commit("models", "org/tiny", "v1")[:12] in checks["hub model"][1]
    assert checks["hub dataset.train"][0] == "ok"
    assert checks["gpus"][0] == checks["secret"][0] == "skip"

    checks = _checks(hub, "hf://org/tiny@v9", "hf://datasets/org/nothing")
    assert checks["hub model"] == (
        "fail",
        f"hf://org/tiny@v9: revision 'v9' does not exist on {hub.url}",
    )
    assert checks["hub dataset.train"][0] == "fail"
    assert "no such dataset" in checks["hub dataset.train"][1]


def test_preflight_cli_runs_offline_parts_without_a_kubeconfig(
    hub: HubServer, tmp_path: Path
) -> None:
    spec = make_job("hubjob").model("hf://org/missing").spec("hub", {"endpoint": hub.url})
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec.doc()))
    result = CliRunner().invoke(app, ["preflight", str(path), "-o", "json"], env=dict(os.environ))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    doc = json.loads(result.stdout)
    checks = {c["check"]: c for c in doc["checks"]}
    assert checks["gpus"]["status"] == "skip"
    assert checks["hub model"]["status"] == "fail"
    assert "memory" in checks
