"""hack/timed.sh, the per-step timing .ci/run prints, and the tier table of tests/conftest.py."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(tmp_path: Path, *cmd: str) -> tuple[int, list[list[str]]]:
    log = tmp_path / "timings"
    env = {**os.environ, "FTJOBS_TIMINGS": str(log)}
    rc = subprocess.run(["bash", str(ROOT / "hack" / "timed.sh"), *cmd], env=env).returncode
    lines = log.read_text().splitlines() if log.exists() else []
    return rc, [line.split() for line in lines]


def test_timed_records_the_step_and_keeps_the_exit_code(tmp_path: Path) -> None:
    assert timed(tmp_path, "ok-step", "true") == (0, [["ok-step", "0", "0"]])
    rc, rows = timed(tmp_path, "bad-step", "bash", "-c", "exit 3")
    assert rc == 3  # a failing step still fails the make target
    assert rows[-1] == ["bad-step", "0", "3"]


def test_ci_run_uses_parallel_make_and_prints_the_table() -> None:
    text = (ROOT / ".ci" / "run").read_text()
    # The README's test command itself, run with parallel preparation steps.
    assert 'MAKEFLAGS="-j' in text and "make test" in text and "trap summary EXIT" in text
    makefile = (ROOT / "Makefile").read_text()
    for step in ("setup", "testbins", "image", "mlflow-venv", "tests"):
        assert f"$(TIMED) {step} " in makefile, step
