"""`ftjobs sweep` and `ftjobs compare` on the real control plane: the points are real
FineTuneJobs linked by labels, at most --parallel run at once, and the comparison
marks the point whose (trainer-published) test accuracy is best. kwok plays the pods;
a helper thread plays each point's trainer, one point at a time, and records whether a
later point existed while an earlier one was still running."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ftjobs.sdk.sweep import LABEL_SWEEP, parse_grid, sweep_points
from tests.e2e.harness import Api, ControllerProcess, wait_for
from tests.integration.test_submit import EXAMPLE, api, controller, data, ftjobs, ns, sets

__all__ = ["api", "controller", "data", "ns"]  # module fixtures shared with test_submit

GRID = "hyperparameters.learningRate=1e-5,1e-4,3e-4"
ACCURACY = [0.71, 0.93, 0.88]  # what each point's "trainer" publishes


class SweepDriver(threading.Thread):
    def __init__(self, cluster: Any, api: Api, ns: str, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.cluster, self.api, self.ns, self.names = cluster, api, ns, names
        self.overlaps: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i, name in enumerate(self.names):
                pods = wait_for(
                    f"pods of {name}",
                    lambda name=name: [  # type: ignore[misc]
                        p
                        for p in self.api.pods(self.ns, name, 1)
                        if (p.get("status") or {}).get("phase") == "Running"
                    ],
                    120,
                )
                self.overlaps += [n for n in self.names[i + 1 :] if self.api.ftj(self.ns, n)]
                self.api.kube.patch_finetunejob_status(
                    self.ns,
                    name,
                    {
                        "progress": {"step": 12, "totalSteps": 12, "loss": 0.1 + i, "percent": 100},
                        "metrics": {
                            "split": "test",
                            "base": {"accuracy": 0.5},
                            "fineTuned": {"accuracy": ACCURACY[i]},
                        },
                    },
                )
                for pod in pods:
                    self.cluster.pod_exit(pod["metadata"]["name"], self.ns, 0, "")
        except BaseException as exc:
            self.error = exc


def test_sweep_runs_one_point_at_a_time_and_compare_marks_the_best(
    cluster: Any,
    ns: str,
    controller: ControllerProcess,
    data: dict[str, str],
    api: Api,
    tmp_path: Path,
) -> None:
    overrides = [s for s in sets(data) if s != "--set"]
    sweep, points = sweep_points(str(EXAMPLE), parse_grid([GRID]), overrides)
    names = [p.name for p in points]
    driver = SweepDriver(cluster, api, ns, names)
    driver.start()
    report = tmp_path / "sweep.json"
    run = ftjobs(
        cluster, "sweep", str(EXAMPLE), "--grid", GRID, "-n", ns, "--parallel", "1",
        "--timeout", "400", "--report", str(report), *sets(data), timeout=450,
    )  # fmt: skip
    driver.join(10)
    assert driver.error is None, driver.error
    assert run.returncode == 0, run.stdout + run.stderr
    assert driver.overlaps == []  # --parallel 1: the next point only after the previous
    doc = json.loads(report.read_text())
    assert doc["best"] == names[1] and doc["metric"] == "accuracy"
    assert [r["metric"] for r in doc["runs"]] == ACCURACY
    assert doc["differing"] == ["hyperparameters.learningRate"]
    assert f"best: {names[1]}" in run.stdout

    for name in names:  # real FineTuneJobs, linked by the sweep's label
        labels = api.ftj(ns, name)["metadata"]["labels"]  # type: ignore[index]
        assert labels[LABEL_SWEEP] == sweep
    again = ftjobs(cluster, "compare", "--sweep", sweep, "-n", ns, "-o", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["best"] == names[1]

    # The same sweep again finds its finished jobs (idempotent): nothing new runs.
    rerun = ftjobs(cluster, "sweep", str(EXAMPLE), "--grid", GRID, "-n", ns, *sets(data))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"best: {names[1]}" in rerun.stdout
