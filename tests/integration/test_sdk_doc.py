"""docs/sdk.md's example runs as written against the test control plane."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import install_crd

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_sdk_doc_example_runs(
    cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_crd(cluster)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.setenv("NAMESPACE", namespace)
    (block,) = python_blocks((ROOT / "docs/sdk.md").read_text())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "docs/sdk.md", "exec"), {"__name__": "sdk_doc"})
    out = printed.getvalue()
    assert "epochs: 1" in out
    kinds = [
        "Job",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    assert f"children: {kinds}" in out
    assert "refused: spec.hyperparameters.microBatchSize" in out
    assert re.search(r"^quickstart-sentiment-\w+ Pending$", out, flags=re.M), out
    assert os.environ["NAMESPACE"] == namespace
