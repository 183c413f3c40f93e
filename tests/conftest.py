"""Shared test setup.

Tiers are marked by directory (tests/unit -> unit, ...), so `pytest -m unit` selects a
tier without every module repeating its marker. The control plane and the S3 server
fixtures live in tests/fixtures/plugin.py and start once per session.
"""

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI (CI=true) draws the same hypothesis examples every run, so whether a submission lands
# does not depend on a lucky draw; local runs keep exploring new examples and remember
# failures in .hypothesis/. Loaded here, before test modules build their settings objects.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins = ["tests.fixtures.plugin"]

_TIERS = ("unit", "integration", "training", "e2e", "nodes", "image")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
