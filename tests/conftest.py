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


# Where the time of a run goes, per tier (setup + call + teardown of its tests; the
# session fixtures' start-up counts for the first test that needs them). Printed after
# the run and, under .ci/run, appended to its timing table ($FTJOBS_TIMINGS).
_TIER_SECONDS: dict[str, float] = {}


def _tier_of(nodeid: str) -> str:
    parts = Path(nodeid.split("::", 1)[0]).parts
    return next((t for t in _TIERS if t in parts), "other")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = _tier_of(report.nodeid)
    _TIER_SECONDS[tier] = _TIER_SECONDS.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if not _TIER_SECONDS:
        return
    tr = terminalreporter
    tr.write_sep("=", "time per tier (s)")
    for tier, secs in sorted(_TIER_SECONDS.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"  {tier:<12} {secs:8.1f}")
    timings = os.environ.get("FTJOBS_TIMINGS")
    if timings:
        with open(timings, "a") as f:
            for tier, secs in _TIER_SECONDS.items():
                f.write(f"tier-{tier} {secs:.0f} 0\n")
